"""Around every request: a body size limit, and every answer counted by its status.

A plain ASGI middleware (Starlette's `BaseHTTPMiddleware` costs more than a prediction): a body
over the limit is refused with 413 as soon as its declared length (or the bytes read so far) says
so, before anything parses it; each response of 400 and above is counted in `/metrics` by endpoint
and status, 422s from validation and 500s included.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, errors: Counter):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.errors = errors

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return await self._refuse(path, send)
        received = 0
        status = 500
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes and not refused:
                # Answer now and tell the app the client left: it stops reading, and its answer is dropped.
                refused = True
                await self._refuse(path, send)
                return {"type": "http.disconnect"}
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status
            if refused:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, limited_receive, counting_send)
        except Exception:
            if not refused:
                raise
        finally:
            if status >= 400 and not refused:
                self.errors.labels(path, str(status)).inc()

    async def _refuse(self, path: str, send) -> None:
        body = json.dumps({"detail": f"request body over {self.max_body_bytes:,} bytes: send at most 1,000 "
                                     "requests at once"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        self.errors.labels(path, "413").inc()
