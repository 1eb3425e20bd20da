"""Core results to Anthropic Messages API objects and server-sent events (plain dicts, built per token)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson

from mindfu_core.domain.chat import ChatDelta, ChatResult, FinishReason, ToolCall, ToolCallDelta, Usage
from mindfu_http.errors import anthropic_error
from mindfu_http.openai.wire import extension

STOP_REASONS = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
}


def stop_of(reason: FinishReason, stop_sequence: str | None) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for how a choice ended."""
    if reason is FinishReason.STOP and stop_sequence is not None:
        return "stop_sequence", stop_sequence
    return STOP_REASONS[reason], None


def message_id(completion_id: str) -> str:
    """The Anthropic-style id of a logged completion (``chatcmpl-<hex>`` -> ``msg_<hex>``)."""
    _, _, tail = completion_id.partition("-")
    return f"msg_{tail or uuid.uuid4().hex}"


def tool_input(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as the JSON object Anthropic clients expect (engines emit objects; a model that
    wrote something else gets it wrapped rather than dropped)."""
    try:
        parsed = json.loads(call.arguments or "{}")
    except ValueError:
        return {"_raw": call.arguments}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def _usage(usage: Usage) -> dict[str, Any]:
    """Anthropic's counts: ``input_tokens`` are the prompt tokens computed for this request, and the ones
    read from the prompt cache are ``cache_read_input_tokens`` (their sum is the prompt)."""
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def _tool_block(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(call)}


def message(result: ChatResult, *, model: str) -> dict[str, Any]:
    """A finished completion as an Anthropic ``message`` (its first choice)."""
    choice = result.choices[0]
    content: list[dict[str, Any]] = []
    if choice.message.content:
        content.append({"type": "text", "text": choice.message.content})
    content.extend(_tool_block(call) for call in choice.message.tool_calls)
    stop_reason, stop_sequence = stop_of(choice.finish_reason, choice.stop_sequence)
    return {
        "id": message_id(result.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": _usage(result.usage),
        **extension(result.sources, result.conversation_id),
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventWriter:
    """Builds the event sequence of one streamed message: ``message_start``, ``ping``, a start / deltas /
    stop per content block (text, then each tool call), ``message_delta`` with the stop reason and usage,
    and ``message_stop``."""

    def __init__(self, *, completion_id: str, model: str, conversation_id: str | None = None) -> None:
        self.id = message_id(completion_id)
        self.model = model
        self._conversation_id = conversation_id
        self._blocks = 0
        self._open: str | None = None  # the type of the block being streamed
        self._stop_reason = "end_turn"
        self._stop_sequence: str | None = None
        self._usage = Usage()
        self._sources: tuple[Any, ...] = ()

    def start(self) -> list[bytes]:
        start: dict[str, Any] = {
            "type": "message_start",
            "message": {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": _usage(Usage()),
                **extension((), self._conversation_id),
            },
        }
        return [event("message_start", start), event("ping", {"type": "ping"})]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        self._blocks += 1
        return [event("content_block_stop", {"type": "content_block_stop", "index": self._blocks - 1})]

    def delta(self, delta: ChatDelta) -> list[bytes]:
        if delta.index != 0:
            return []  # Anthropic messages have one choice
        out: list[bytes] = []
        if delta.content:
            if self._open != "text":
                out += self._close()
                self._open = "text"
                out.append(
                    event(
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": self._blocks,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                )
            out.append(
                event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": self._blocks,
                        "delta": {"type": "text_delta", "text": delta.content},
                    },
                )
            )
        for call in delta.tool_calls:
            out += self._close()
            out += self._tool_call(call)
        for piece in delta.tool_call_deltas:
            out += self._tool_piece(piece)
        if delta.finish_reason is not None:
            self._stop_reason, self._stop_sequence = stop_of(delta.finish_reason, delta.stop_sequence)
        if delta.usage is not None:
            self._usage = delta.usage
        if delta.sources:
            self._sources = delta.sources
        return out

    def _tool_call(self, call: ToolCall) -> list[bytes]:
        index = self._blocks
        self._open = "tool_use"
        start = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        return [
            event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            ),
            event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(tool_input(call))},
                },
            ),
            *self._close(),
        ]

    def _tool_piece(self, piece: ToolCallDelta) -> list[bytes]:
        out: list[bytes] = []
        if piece.name is not None:  # a new call: its own block
            out += self._close()
            self._open = "tool_use"
            start: dict[str, Any] = {"type": "tool_use", "id": piece.id, "name": piece.name, "input": {}}
            out.append(
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": self._blocks, "content_block": start},
                )
            )
        if piece.arguments:
            out.append(
                event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": self._blocks,
                        "delta": {"type": "input_json_delta", "partial_json": piece.arguments},
                    },
                )
            )
        return out

    def finish(self) -> list[bytes]:
        end: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason, "stop_sequence": self._stop_sequence},
            "usage": _usage(self._usage),
            **extension(self._sources),
        }
        return [*self._close(), event("message_delta", end), event("message_stop", {"type": "message_stop"})]

    def failure(self, status: int, payload: dict[str, Any], request_id: str) -> list[bytes]:
        """Anthropic's ``error`` event (the stream ends there)."""
        return [event("error", anthropic_error(status, payload["error"]["message"], request_id)[1])]
