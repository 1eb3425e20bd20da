"""Core results to OpenAI response objects (plain dicts: they are built once per token when streaming)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    ModelInfo,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from mindfu_core.domain.retrieval import Source
from mindfu_http.responses import ModelObject

SYSTEM_FINGERPRINT = "mindfu"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def _token_bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


def chat_logprobs(logprobs: tuple[TokenLogprob, ...] | None) -> dict[str, Any] | None:
    if logprobs is None:
        return None
    return {
        "content": [
            {
                "token": lp.token,
                "logprob": lp.logprob,
                "bytes": _token_bytes(lp.token),
                "top_logprobs": [
                    {"token": t.token, "logprob": t.logprob, "bytes": _token_bytes(t.token)} for t in lp.top
                ],
            }
            for lp in logprobs
        ],
        "refusal": None,
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _tool_call_piece(piece: ToolCallDelta) -> dict[str, Any]:
    """A streamed piece in OpenAI's shape: the first names the call, the rest add argument text."""
    if piece.name is None:
        return {"index": piece.index, "function": {"arguments": piece.arguments}}
    return {
        "index": piece.index,
        "id": piece.id,
        "type": "function",
        "function": {"name": piece.name, "arguments": piece.arguments},
    }


def source_dict(source: Source) -> dict[str, Any]:
    return {
        "number": source.number,
        "document_id": source.document_id,
        "name": source.name,
        "page": source.page,
        "chunk_index": source.chunk_index,
        "score": round(source.score, 6),
        "excerpt": source.excerpt,
    }


def extension(sources: tuple[Source, ...] = (), conversation_id: str | None = None) -> dict[str, Any]:
    """MindFu's namespaced response extension: ``"mindfu": {"conversation_id": ..., "sources": [...]}``
    (each key only when it has a value; no ``mindfu`` key at all when neither has)."""
    body: dict[str, Any] = {}
    if conversation_id:
        body["conversation_id"] = conversation_id
    if sources:
        body["sources"] = [source_dict(s) for s in sources]
    return {"mindfu": body} if body else {}


def chat_completion(result: ChatResult, *, completion_id: str, created: int) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": choice.index,
                "message": {
                    "role": "assistant",
                    "content": choice.message.content,
                    "refusal": None,
                    **(
                        {"tool_calls": [_tool_call(c) for c in choice.message.tool_calls]}
                        if choice.message.tool_calls
                        else {}
                    ),
                },
                "logprobs": chat_logprobs(choice.logprobs),
                "finish_reason": choice.finish_reason.value,
            }
            for choice in result.choices
        ],
        "usage": usage_dict(result.usage),
        **extension(result.sources, result.conversation_id),
    }


def text_completion(result: ChatResult, *, completion_id: str, created: int) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": result.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": choice.index,
                "text": choice.message.content or "",
                "logprobs": _text_logprobs(choice.logprobs),
                "finish_reason": choice.finish_reason.value,
            }
            for choice in result.choices
        ],
        "usage": usage_dict(result.usage),
    }


def _text_logprobs(logprobs: tuple[TokenLogprob, ...] | None) -> dict[str, Any] | None:
    if not logprobs:
        return None
    return {
        "tokens": [lp.token for lp in logprobs],
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [{t.token: t.logprob for t in lp.top} for lp in logprobs],
        "text_offset": [],
    }


class ChunkWriter:
    """Builds the SSE lines of one streamed completion (chat or text)."""

    def __init__(
        self,
        *,
        model: str,
        chat: bool,
        include_usage: bool,
        completion_id: str | None = None,
        conversation_id: str | None = None,
    ) -> None:
        self.id = completion_id or new_id("chatcmpl" if chat else "cmpl")
        self._conversation_id = conversation_id  # announced in the first chunk's extension
        self.created = int(time.time())
        self.model = model
        self.chat = chat
        self.include_usage = include_usage
        self._object = "chat.completion.chunk" if chat else "text_completion"
        self._started: set[int] = set()
        self._tool_calls_sent: dict[int, int] = {}

    def _event(
        self, choices: list[dict[str, Any]], usage: Usage | None = None, sources: tuple[Source, ...] = ()
    ) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": self._object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage_dict(usage) if usage is not None else None
        chunk.update(extension(sources, self._conversation_id))
        self._conversation_id = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def delta(self, delta: ChatDelta) -> list[bytes]:
        events: list[bytes] = []
        has_payload = bool(
            delta.content
            or delta.tool_calls
            or delta.tool_call_deltas
            or delta.logprobs
            or delta.finish_reason
        )
        if has_payload:
            events.append(self._event([self._choice(delta)]))
        if delta.usage is not None and self.include_usage:
            events.append(self._event([], delta.usage))
        if delta.sources:
            events.append(self._event([], sources=delta.sources))
        return events

    def _choice(self, delta: ChatDelta) -> dict[str, Any]:
        finish = delta.finish_reason.value if delta.finish_reason else None
        if not self.chat:
            return {
                "index": delta.index,
                "text": delta.content,
                "logprobs": _text_logprobs(delta.logprobs),
                "finish_reason": finish,
            }
        body: dict[str, Any] = {}
        if delta.index not in self._started:
            self._started.add(delta.index)
            body["role"] = "assistant"
        calls = bool(delta.tool_calls or delta.tool_call_deltas)
        if delta.content or not calls:
            body["content"] = delta.content
        if calls:
            first = self._tool_calls_sent.get(delta.index, 0)
            sent = [{"index": first + i, **_tool_call(call)} for i, call in enumerate(delta.tool_calls)]
            for piece in delta.tool_call_deltas:
                sent.append(_tool_call_piece(piece))
                first = max(first, piece.index + 1)
            body["tool_calls"] = sent
            self._tool_calls_sent[delta.index] = first + len(delta.tool_calls)
        return {
            "index": delta.index,
            "delta": body,
            "logprobs": chat_logprobs(delta.logprobs) if delta.logprobs else None,
            "finish_reason": finish,
        }

    DONE = b"data: [DONE]\n\n"

    def start(self) -> list[bytes]:
        """A chat stream opens with the role chunk, as OpenAI's does: it goes out as soon as the request
        is accepted, before the prompt is computed."""
        if not self.chat:
            return []
        self._started.add(0)
        role = {"role": "assistant", "content": ""}
        return [self._event([{"index": 0, "delta": role, "logprobs": None, "finish_reason": None}])]

    def finish(self) -> list[bytes]:
        return [self.DONE]

    def failure(self, status: int, payload: dict[str, Any], request_id: str) -> list[bytes]:
        """An error event (the OpenAI error object), then ``[DONE]``."""
        return [b"data: " + orjson.dumps(payload) + b"\n\n", self.DONE]


def model_object(info: ModelInfo) -> ModelObject:
    """OpenAI's model object, with Anthropic's fields beside it (type, display_name, created_at)."""
    created_at = datetime.fromtimestamp(info.created, UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": info.owned_by,
        "type": "model",
        "display_name": info.id,
        "created_at": created_at,
        "mindfu": {
            "context_length": info.context_length,
            "engine": info.engine,
            "source": info.source,
            "supports_tools": info.supports_tools,
            "supports_logprobs": info.supports_logprobs,
        },
    }
