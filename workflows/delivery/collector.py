"""The ctcd collector: what production says comes back, as prediction log records and confirmed labels.

Payload-log CloudEvents become prediction log records, and ``POST /v1/feedback`` takes the labels people confirm.

On a cluster it runs as the ``ctcd-collector`` Deployment of ``gitops/platform``. Each InferenceService's
``spec.predictor.logger`` (``mode: all``) sends it KServe's CloudEvents: a request and a response per answer, paired
by ``ce-id`` (the request id). The logger URL carries the registry version (``/log?model_version=7``), so during a
canary each revision names its own model. The records go through the same writer as the local gateway's
(:mod:`serving.predlog`): a bounded queue flushed by size and time, never on the request path.

``POST /v1/feedback`` takes ``{"request_id": ..., "label": ...}`` or a list of them, checks every label against the
prediction log and the task's classes (:class:`workflows.training.feedback.Desk`) and writes them all or none. On a
cluster it needs ``Authorization: Bearer <token>`` (``CTCD_FEEDBACK_TOKEN``, from a Secret); locally it answers on
127.0.0.1 only, inside the bridge, and the gateway passes ``/v1/feedback`` to it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serving import predlog
from serving.local.metrics import Metrics
from workflows.training.feedback import Desk
from workflows.training.validation import DatasetError

_logger = logging.getLogger(__name__)
REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
MAX_FEEDBACK_BODY = 1024 * 1024  # bytes: about 10,000 labels
MAX_LABELS = 10_000
PENDING = 10_000  # requests waiting for their response; the oldest is dropped past this


class Pairs:
    """KServe's request and response events of one answer, joined by ``ce-id`` into a prediction log record."""

    def __init__(self, capacity: int = PENDING, privacy: predlog.Privacy | None = None) -> None:
        self.capacity, self.privacy = capacity, privacy or predlog.Privacy()
        self.waiting: OrderedDict[str, tuple[dict[str, str], bytes]] = OrderedDict()

    def take(self, headers: dict[str, str], body: bytes, model_version: str) -> predlog.Record | None:
        """Keep a request event; return the record once its response arrives (None until then, or for others)."""
        kind, event_id = headers.get("ce-type", ""), headers.get("ce-id", "")
        if not event_id:
            return None
        if kind == REQUEST_TYPE:
            self.waiting[event_id] = (headers, body)
            while len(self.waiting) > self.capacity:
                self.waiting.popitem(last=False)
            return None
        if kind != RESPONSE_TYPE or event_id not in self.waiting:
            return None
        asked, question = self.waiting.pop(event_id)
        return record(asked, question, headers, body, model_version, self.privacy)


def _moment(headers: dict[str, str]) -> datetime | None:
    try:
        return datetime.fromisoformat(headers.get("ce-time", "").replace("Z", "+00:00"))
    except ValueError:
        return None


def record(
    asked: dict[str, str],
    question: bytes,
    answered: dict[str, str],
    answer: bytes,
    model_version: str,
    privacy: predlog.Privacy | None = None,
) -> predlog.Record:
    """The record of one answer from KServe's two events (an answer that is no prediction counts as a 500)."""
    labels, confidences, handoffs, candidates = predlog.outputs(answer)
    start, end = _moment(asked), _moment(answered)
    try:
        doc = json.loads(question)
    except (ValueError, UnicodeDecodeError, RecursionError):
        doc = None
    rows = doc.get("instances", []) if isinstance(doc, dict) else []
    parameters = doc.get("parameters") if isinstance(doc, dict) else None
    service = answered.get("ce-inferenceservicename", "")
    hidden = privacy or predlog.Privacy()
    inputs, hashed = predlog.redact(
        list(rows)[:10_000] if isinstance(rows, list) else [], hidden.sensitive.get(service, frozenset()), hidden.key
    )
    return predlog.Record(
        request_id=answered.get("ce-id", ""),
        time=(end or datetime.now().astimezone()).isoformat(timespec="milliseconds"),
        namespace=answered.get("ce-namespace", ""),
        service=service,
        answered_by=service,
        revision=answered.get("ce-endpoint", ""),
        model_version=model_version,
        channel=str(parameters.get("channel", "")) if isinstance(parameters, dict) else "",
        inputs=inputs,
        labels=labels,
        confidences=confidences,
        handoffs=handoffs,
        candidates=candidates,
        latency_ms=round((end - start).total_seconds() * 1000, 3) if start and end else 0.0,
        status=200 if labels else 500,
        hashed=hashed,
    )


class LaterS3:
    """An S3 client made on its first use: the service may start before S3 answers (``ctcd up`` starts both)."""

    def __init__(self, settings: Any) -> None:
        self.settings, self.made = settings, None

    def __getattr__(self, name: str) -> Any:
        """The real client's attribute (the client is made the first time)."""
        if self.made is None:
            from workflows.platform.s3 import s3_client

            self.made = s3_client(self.settings)
        return getattr(self.made, name)


def parse_labels(body: bytes) -> list[tuple[str, str]]:
    """``(request_id, label)`` pairs from ``{"request_id", "label"}`` or a list of them.

    Raises:
        DatasetError: Not JSON, not that shape, or too many at once.
    """
    shape = 'send {"request_id": "...", "label": "..."} or a list of them'
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise DatasetError(f"the body is not JSON; {shape}") from None
    items = doc if isinstance(doc, list) else [doc]
    if len(items) > MAX_LABELS:
        raise DatasetError(f"{len(items)} labels in one request; send at most {MAX_LABELS}")
    pairs = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or set(item) != {"request_id", "label"}:
            raise DatasetError(f"item {number} is not an object with exactly request_id and label; {shape}")
        if not all(isinstance(item[k], str) and item[k] for k in ("request_id", "label")):
            raise DatasetError(f"item {number}: request_id and label must be non-empty strings")
        pairs.append((item["request_id"], item["label"]))
    return pairs


def feedback_route(desk: Desk, token: str | None) -> Route:
    """``POST /v1/feedback``: confirmed labels, checked whole and written whole (bearer token when one is set)."""

    async def receive(request: Request) -> JSONResponse:
        given = request.headers.get("authorization", "")
        if token is not None and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": "give Authorization: Bearer <the ctcd-feedback token>"}, status_code=401)
        body = await request.body()
        if len(body) > MAX_FEEDBACK_BODY:
            return JSONResponse({"error": f"the body is over {MAX_FEEDBACK_BODY} bytes; send fewer"}, status_code=413)
        try:
            pairs = parse_labels(body)
            key, count = await run_in_threadpool(desk.confirm, pairs)
        except DatasetError as exc:
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=422)
        except Exception as exc:  # S3 away: say so, keep nothing half-done (the write is one object)
            _logger.warning("feedback not written: %s", exc)
            return JSONResponse({"error": f"the labels were not written (storage: {exc}); retry"}, status_code=503)
        return JSONResponse({"labelled": count, "stored": key})

    return Route("/v1/feedback", receive, methods=["POST"])


def log_route(writer: predlog.LogWriter, pairs: Pairs, metrics: Metrics) -> Route:
    """``POST /log``: KServe's payload-logger CloudEvents (binary mode), queued as records and counted per arm."""

    async def receive(request: Request) -> JSONResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        made = pairs.take(headers, await request.body(), request.query_params.get("model_version", ""))
        if made is not None:
            writer.add(made)
            metrics.observe_record(made)
        return JSONResponse({"status": "accepted"}, status_code=202)

    return Route("/log", receive, methods=["POST"])


def token_from_env() -> str | None:
    """The feedback token (``CTCD_FEEDBACK_TOKEN``), or None when unset (loopback only)."""
    return os.environ.get("CTCD_FEEDBACK_TOKEN") or None


def app(writer: predlog.LogWriter, desk: Desk, token: str | None, privacy: predlog.Privacy | None = None) -> Any:
    """The collector as an ASGI application: ``/log``, ``/v1/feedback``, ``/healthz`` and ``/metrics``."""
    from starlette.applications import Starlette

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "dropped": writer.dropped, "failed": writer.failed})

    metrics = Metrics()
    metrics.count_log(writer)
    routes = [
        log_route(writer, Pairs(privacy=privacy), metrics),
        feedback_route(desk, token),
        Route("/healthz", healthz),
        Route("/metrics", metrics.endpoint),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        writer.close()  # a graceful shutdown flushes the queue

    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    """Serve the collector (``CTCD_COLLECTOR_HOST``, default 127.0.0.1; port ``CTCD_COLLECTOR_PORT``, 8080).

    Off loopback it refuses to start without ``CTCD_FEEDBACK_TOKEN``: labels train the next model.
    """
    import uvicorn

    from workflows.errors import CtcdError
    from workflows.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host, port = os.environ.get("CTCD_COLLECTOR_HOST", "127.0.0.1"), int(os.environ.get("CTCD_COLLECTOR_PORT", "8080"))
    token = token_from_env()
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        raise CtcdError(f"the collector binds {host} without CTCD_FEEDBACK_TOKEN; set it from the ctcd-feedback Secret")
    settings = get_settings()
    client = LaterS3(settings)
    writer = predlog.LogWriter(
        lambda key, body: client.put_object(Bucket=settings.predictions_bucket, Key=key, Body=body)
    )
    key = os.environ.get("CTCD_PREDICTION_LOG_KEY", "")
    if not key:
        raise CtcdError("CTCD_PREDICTION_LOG_KEY is not set; give it from the ctcd-feedback Secret (key hash-key)")
    privacy = predlog.Privacy.of_techniques(key.encode())
    uvicorn.run(app(writer, Desk(client, settings), token, privacy), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
