"""Around every request: the bearer token when one is configured (`auth.py`), a body size limit,
and every answer counted by its status.

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

from mlplatform.serving.auth import OPEN_PATHS, authorized

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, errors: Counter, token: str | None = None):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.errors = errors
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if self.token is not None and path not in OPEN_PATHS and not authorized(scope["headers"], self.token):
            return await self._answer(path, send, 401, "a bearer token is required: send the header "
                                                       "`Authorization: Bearer <MLPLATFORM_API_TOKEN>`",
                                      [(b"www-authenticate", b"Bearer")])
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
        await self._answer(path, send, 413, f"request body over {self.max_body_bytes:,} bytes: send at most 1,000 "
                                            "requests at once")

    async def _answer(self, path: str, send, status: int, detail: str, headers: list | None = None) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *(headers or [])]})
        await send({"type": "http.response.body", "body": body})
        self.errors.labels(path, str(status)).inc()
