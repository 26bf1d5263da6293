"""HTTP error answers the predictor adds to KServe's.

KServe answers a body that does not fit the v2 request schema with FastAPI's default 422, which echoes the
offending input back; when that input holds NaN or Infinity the echo cannot be encoded and the client gets a
500.  This handler answers 400 — the one status for bad input on both protocols — with where and what was
wrong, never the input itself.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _where(location: Any) -> str:
    return ".".join(str(part) for part in location if part != "body") or "body"


async def request_validation_error(_: Any, exc: Exception) -> JSONResponse:
    """400 listing each problem as ``where: what`` (at most five), without echoing the request."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    problems = sorted({f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors})[:5]
    message = "the body is not a valid inference request"
    return JSONResponse(status_code=400, content={"error": f"{message}: {'; '.join(problems) or 'unreadable'}"})


class JsonByDefault:
    """ASGI middleware: a request that names no Content-Type is read as JSON (KServe reads it as binary v2).

    Open Inference Protocol clients such as ``tritonclient.http`` send JSON bodies without a Content-Type; a binary
    request always names its own (``application/octet-stream`` with ``Inference-Header-Content-Length``).

    Args:
        app: The wrapped ASGI application.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Add ``content-type: application/json`` where the request has none."""
        if scope["type"] == "http" and scope.get("method") == "POST":
            headers = [(k, v) for k, v in scope.get("headers") or [] if not (k == b"content-type" and not v.strip())]
            if not any(k == b"content-type" for k, _ in headers):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def install(app: Any) -> None:
    """Register the handlers, the JSON default and the request-body limit on a FastAPI app."""
    from serving.limits import BodyLimit

    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_middleware(JsonByDefault)
    app.add_middleware(BodyLimit)
