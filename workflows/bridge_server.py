"""``python -m workflows.bridge_server``: the registry bridge next to the local platform.

It reconciles every few seconds (stage changes have no webhook), registers an MLflow webhook for alias
changes pointing at itself, and reconciles at once on each delivery whose signature verifies.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workflows import bridge
from workflows.platform import registry
from workflows.settings import Settings, get_settings

_logger = logging.getLogger("workflows.bridge")
EVENTS = ["model_version_alias.created", "model_version_alias.deleted"]


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


def app(settings: Settings, secret: str, wake: threading.Event) -> Starlette:
    """The webhook receiver: 401 unless the signature verifies, then a reconcile is triggered."""

    async def receive(request: Request) -> JSONResponse:
        payload = (await request.body()).decode(errors="replace")
        problem = bridge.verify(secret, dict(request.headers), payload)
        if problem:
            _logger.warning("refused webhook: %s", problem)
            return JSONResponse({"error": f"refused: {problem}"}, status_code=401)
        event = json.loads(payload) if payload else {}
        _logger.info("webhook %s.%s", event.get("entity"), event.get("action"))
        wake.set()
        return JSONResponse({"status": "accepted"})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/webhooks/mlflow", receive, methods=["POST"]), Route("/healthz", health)])


def loop(settings: Settings, secret: str, wake: threading.Event, interval: float = 3.0) -> None:
    """Reconcile on every wake-up or every ``interval`` seconds."""
    registered = False
    while True:
        try:
            if not registered:
                ensure_webhook(settings, secret)
                registered = True
            for action in bridge.reconcile_once(settings):
                if action.kind not in ("in-sync", "waiting"):
                    _logger.info("%s/%s: %s %s", action.technique, action.environment, action.kind, action.detail)
        except Exception as exc:  # MLflow or git may be briefly away; try again next round
            _logger.warning("bridge pass failed: %s", exc)
        wake.wait(interval)
        wake.clear()


def main() -> None:
    """Run the reconcile loop and the webhook receiver on 127.0.0.1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    secret = webhook_secret(settings)
    wake = threading.Event()
    threading.Thread(target=loop, args=(settings, secret, wake), daemon=True).start()
    uvicorn.run(app(settings, secret, wake), host="127.0.0.1", port=settings.bridge_port, log_level="warning")


if __name__ == "__main__":
    main()
