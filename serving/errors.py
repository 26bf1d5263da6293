"""HTTP error answers the predictor adds to KServe's.

KServe answers a body that does not fit the v2 request schema with FastAPI's default 422, which echoes the
offending input back; when that input holds NaN or Infinity the echo cannot be encoded and the client gets a
500.  This handler answers 422 with where and what was wrong, never the input itself.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _where(location: Any) -> str:
    return ".".join(str(part) for part in location if part != "body") or "body"


async def request_validation_error(_: Any, exc: Exception) -> JSONResponse:
    """422 listing each problem as ``where: what`` (at most five), without echoing the request."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    problems = sorted({f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors})[:5]
    message = "the body is not a valid inference request"
    return JSONResponse(status_code=422, content={"error": f"{message}: {'; '.join(problems) or 'unreadable'}"})


def install(app: Any) -> None:
    """Register the handlers and the request-body limit on a FastAPI app."""
    from serving.limits import BodyLimit

    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_middleware(BodyLimit)
