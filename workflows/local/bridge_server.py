"""``python -m workflows.local.bridge_server``: the registry bridge next to the local platform.

It reconciles every few seconds (stage changes have no webhook), registers an MLflow webhook for alias
changes pointing at itself, and reconciles at once on each delivery whose signature verifies.  A delivery is
authenticated from its headers and raw bytes before anything is parsed; a body over 64 KiB is refused with
413, a replayed delivery id with 409 (ids are kept in the state folder, so a restart forgets none), and a body
that is not a JSON object with 400.  It also takes confirmed labels, ``POST /v1/feedback``
(:mod:`workflows.delivery.collector`), which the gateway passes on to it.  ``/healthz`` answers
503 with the reason while reconcile passes fail.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path

import uvicorn
from mlflow.entities.webhook import WebhookEvent, WebhookEventStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workflows.delivery import bridge, collector, webhook
from workflows.platform import registry
from workflows.settings import Settings, get_settings
from workflows.training.feedback import Desk

_logger = logging.getLogger("workflows.delivery.bridge")
EVENTS: list[WebhookEventStr | WebhookEvent] = ["model_version_alias.created", "model_version_alias.deleted"]
MAX_BODY = 64 * 1024  # bytes: an MLflow event is well under 1 KiB


def webhook_secret(settings: Settings) -> str:
    """The webhook secret, generated once into the state folder (mode 0600)."""
    path = settings.state_dir / "webhook-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def ensure_webhook(settings: Settings, secret: str) -> None:
    """Register (once) the MLflow webhook for alias events that points at this bridge."""
    client = registry.client(settings.mlflow_tracking_uri)
    url = f"http://127.0.0.1:{settings.bridge_port}/webhooks/mlflow"
    if any(w.url == url for w in client.list_webhooks()):
        return
    client.create_webhook(name="ctcd-bridge", url=url, events=EVENTS, secret=secret)


class Health:
    """What ``/healthz`` reports: the last reconcile pass, and when it ran."""

    def __init__(self) -> None:
        self.error = ""
        self.last_ok = 0.0
        self.passes = 0

    def ok(self) -> None:
        """Record a pass that went through."""
        self.error, self.last_ok, self.passes = "", time.time(), self.passes + 1

    def failed(self, error: str) -> None:
        """Record a pass that failed, and why."""
        self.error, self.passes = error, self.passes + 1

    def body(self) -> tuple[dict[str, object], int]:
        """The health document and its HTTP status (503 while passes fail)."""
        if self.error:
            return {"status": "failing", "reason": f"registry sync failing: {self.error}"[:500]}, 503
        return {"status": "ok", "passes": self.passes, "last_ok": self.last_ok}, 200


class Replays:
    """Delivery ids seen within the signature's time window; a second delivery of one is refused.

    With a ``path``, the ids are kept in a file (mode 0600, replaced atomically), so a delivery captured before a
    restart or a kill -9 of the bridge is still refused after it.

    Args:
        window: Seconds an id is remembered (twice the signature's allowed clock skew).
        path: Where the ids live across restarts (None: in memory only).
    """

    def __init__(self, window: float = webhook.MAX_SKEW_SECONDS * 2, path: Path | None = None) -> None:
        self.window, self.path = window, path
        self.seen: dict[str, float] = self._load()

    def _load(self) -> dict[str, float]:
        if self.path is None:
            return {}
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(document, dict):
            return {}
        return {str(d): float(t) for d, t in document.items() if isinstance(t, (int, float))}

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(self.seen, handle)
        temporary.replace(self.path)

    def first_time(self, delivery: str) -> bool:
        """Record ``delivery`` (persisted before the answer); False when it was seen already."""
        now = time.time()
        self.seen = {d: t for d, t in self.seen.items() if now - t < self.window}
        if delivery in self.seen:
            return False
        self.seen[delivery] = now
        self._save()
        return True


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None once it grows past ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return body


def app(
    settings: Settings, secret: str, wake: threading.Event, health: Health | None = None, desk: Desk | None = None
) -> Starlette:
    """The webhook receiver, and ``POST /v1/feedback`` when given the ``desk`` that checks confirmed labels.

    A delivery is authenticated before anything is parsed; replays and oversized bodies are refused.
    """
    replays, status = Replays(path=settings.state_dir / "webhook-deliveries.json"), health or Health()

    def refuse(code: int, problem: str) -> JSONResponse:
        _logger.warning("refused webhook: %s", problem)
        return JSONResponse({"error": f"refused: {problem}"}, status_code=code)

    async def receive(request: Request) -> JSONResponse:
        payload = await _read_capped(request, MAX_BODY)
        if payload is None:
            return refuse(413, f"the body is larger than {MAX_BODY} bytes")
        problem = webhook.verify(secret, request.headers, payload)
        if problem:
            return refuse(401, problem)
        if not replays.first_time(request.headers["x-mlflow-delivery-id"]):
            return refuse(409, "this X-MLflow-Delivery-Id was delivered already (replay)")
        try:
            event = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return refuse(400, "the body is not UTF-8 JSON")
        except RecursionError:
            return refuse(400, "the body is JSON nested too deeply")
        if not isinstance(event, dict):
            return refuse(400, "the body is not a JSON object {entity, action, timestamp, data}")
        _logger.info("webhook %s.%s", str(event.get("entity"))[:60], str(event.get("action"))[:60])
        wake.set()
        return JSONResponse({"status": "accepted"})

    async def healthz(_: Request) -> JSONResponse:
        body, code = status.body()
        return JSONResponse(body, status_code=code)

    routes = [Route("/webhooks/mlflow", receive, methods=["POST"]), Route("/healthz", healthz)]
    if desk is not None:
        routes.append(collector.feedback_route(desk, None))  # on 127.0.0.1 only; the gateway passes it on
    return Starlette(routes=routes)


def loop(settings: Settings, secret: str, wake: threading.Event, health: Health, interval: float = 3.0) -> None:
    """Reconcile on every wake-up or every ``interval`` seconds; ``health`` records how each pass went."""
    registered = False
    while True:
        try:
            if not registered:
                ensure_webhook(settings, secret)
                registered = True
            bridge.reconcile_once(settings)  # logs each decision on one line
            health.ok()
        except Exception as exc:  # MLflow or git may be briefly away; try again next round
            _logger.warning("bridge pass failed: %s", exc)
            health.failed(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        wake.wait(interval)
        wake.clear()


def main() -> None:
    """Run the reconcile loop and the webhook receiver on 127.0.0.1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    secret = webhook_secret(settings)
    wake, health = threading.Event(), Health()
    threading.Thread(target=loop, args=(settings, secret, wake, health), daemon=True).start()
    desk = Desk(collector.LaterS3(settings), settings)
    uvicorn.run(
        app(settings, secret, wake, health, desk), host="127.0.0.1", port=settings.bridge_port, log_level="warning"
    )


if __name__ == "__main__":
    main()
