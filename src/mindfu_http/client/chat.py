"""``ChatApi`` over MindFu's OpenAI-compatible routes: models, token counts, completions and their
server-sent event streams."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import quote

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    ChatStream,
    GenerationRequest,
    ModelInfo,
    TextRequest,
)
from mindfu_core.domain.conversations import NO_CONTEXT, CallContext
from mindfu_http.client import parse
from mindfu_http.client.requests import chat_body, generation_body
from mindfu_http.client.transport import STATUS_OF_TYPE, Transport, error_of


class HttpChat:
    """``ChatApi`` over ``/v1/models`` and ``/v1/chat/completions`` (``/v1/completions`` for text)."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    async def list_models(self, *, tenant: str | None = None) -> list[ModelInfo]:
        found = await self._http.json("GET", "/v1/models")
        return [parse.model_of(m) for m in found["data"]]

    async def get_model(self, model_id: str, *, tenant: str | None = None) -> ModelInfo:
        return parse.model_of(await self._http.json("GET", f"/v1/models/{quote(model_id, safe='/')}"))

    async def count_tokens(self, request: ChatRequest) -> int:
        found = await self._http.json("POST", "/v1/chat/completions/count_tokens", json=chat_body(request))
        return int(found["input_tokens"])

    async def complete(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatResult:
        path, body = generation_body(request, context, stream=False)
        found = await self._http.json("POST", path, json=body)
        return parse.result_of(found, chat=not isinstance(request, TextRequest))

    async def stream(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatStream:
        """Opens the stream and reads its first event (errors before generation surface here)."""
        path, body = generation_body(request, context, stream=True)
        chunks = self._chunks(path, body)
        try:
            first = await anext(chunks, None)
        except BaseException:
            await chunks.aclose()
            raise
        if first is None:
            return ChatStream(_nothing(), id="", conversation_id=None)
        conversation = (first.get("mindfu") or {}).get("conversation_id")
        chat = not isinstance(request, TextRequest)
        return ChatStream(_deltas(first, chunks, chat), id=first.get("id", ""), conversation_id=conversation)

    async def _chunks(self, path: str, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """The stream's JSON events up to ``[DONE]``; an error event raises the error it stands for."""
        async with self._http.stream("POST", path, json=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                event = json.loads(data)
                if "error" in event and "choices" not in event:
                    error = event["error"] or {}
                    raise error_of(
                        STATUS_OF_TYPE.get(error.get("type", ""), 500), event, target=self._http.url
                    )
                yield event


async def _nothing() -> AsyncIterator[ChatDelta]:
    return
    yield  # pragma: no cover


async def _deltas(
    first: dict[str, Any], rest: AsyncGenerator[dict[str, Any], None], chat: bool
) -> AsyncIterator[ChatDelta]:
    try:
        for delta in parse.deltas_of(first, chat=chat):
            yield delta
        async for chunk in rest:
            for delta in parse.deltas_of(chunk, chat=chat):
                yield delta
    finally:
        await rest.aclose()
