"""A request-body size limit for the predictor and the local gateway, answered with a 413 that says the limit.

A body is refused as soon as it is known to be too large: at once from its ``Content-Length``, or while it
streams in (chunked uploads) before the application has answered.
"""

from __future__ import annotations

import json
from typing import Any

MAX_BODY_BYTES = 16 * 2**20


class BodyTooLarge(Exception):
    """The request body grew past the limit while it was being read."""


class BodyLimit:
    """ASGI middleware: 413 for request bodies over ``limit`` bytes.

    Args:
        app: The wrapped ASGI application.
        limit: The largest body accepted, in bytes.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass the request on unless its body is too large."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen, started = 0, False

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": f"the request body is larger than {self.limit} bytes; send fewer rows"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
