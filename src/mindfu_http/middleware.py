"""ASGI middleware: request ids and the request-body size limit."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mindfu_http.errors import ANTHROPIC_PREFIX, anthropic_error, error_body


class RequestContext:
    """Gives each request an id (``X-Request-Id``, echoed back) and rejects bodies over ``max_body`` bytes.

    ``limits`` raises the limit for some paths (document uploads), by exact path.
    """

    def __init__(self, app: ASGIApp, *, max_body: int, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.limits = dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        limit = self.limits.get(scope.get("path", ""), self.max_body)
        declared = headers.get(b"content-length")
        path = str(scope.get("path", ""))
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, request_id, limit, path)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            if too_large:
                # the app answered an unreadable body (FastAPI turns any error while it parses a form or
                # JSON into 400): the answer is 413, sent below
                return
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                    (b"request-id", request_id.encode("latin-1")),  # where Anthropic's SDKs look
                ]
            await send(message)

        with contextlib.suppress(_BodyTooLarge):  # raised out of the app when it read the body unguarded
            await self.app(scope, limited_receive, send_with_id)
        if too_large:
            await self._too_large(send, request_id, limit, path)

    async def _too_large(self, send: Send, request_id: str, limit: int, path: str) -> None:
        message = f"Request body is larger than the limit of {limit} bytes."
        body: dict[str, Any] = error_body(message, "invalid_request_error", code="payload_too_large")
        if path.startswith(ANTHROPIC_PREFIX):
            _, body = anthropic_error(413, message, request_id)
        payload = json.dumps(body).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", request_id.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class _BodyTooLarge(Exception):
    pass
