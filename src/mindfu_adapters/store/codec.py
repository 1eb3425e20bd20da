"""Domain records to JSON-ready dicts and back: for SQL JSON columns and the conversation log's queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mindfu_core.domain.chat import FinishReason, Message, Role, ToolCall, Usage
from mindfu_core.domain.conversations import CompletionRecord, CompletionStatus, RetrievedChunk
from mindfu_core.domain.principals import DEFAULT_TENANT

#: Bumped when the queued form of a record changes; older entries are still read.
RECORD_VERSION = 1


def tool_calls_to_json(calls: tuple[ToolCall, ...]) -> list[dict[str, str]] | None:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls] or None


def tool_calls_from_json(value: Any) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"]) for c in value or ())


def message_to_dict(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = tool_calls_to_json(message.tool_calls)
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def message_from_dict(value: dict[str, Any]) -> Message:
    return Message(
        role=Role(value["role"]),
        content=value.get("content"),
        tool_calls=tool_calls_from_json(value.get("tool_calls")),
        tool_call_id=value.get("tool_call_id"),
        name=value.get("name"),
    )


def record_to_dict(record: CompletionRecord) -> dict[str, Any]:
    return {
        "v": RECORD_VERSION,
        "id": record.id,
        "conversation_id": record.conversation_id,
        "created_at": record.created_at.isoformat(),
        "model": record.model,
        "messages": [message_to_dict(m) for m in record.messages],
        "responses": [message_to_dict(m) for m in record.responses],
        "finish_reasons": [r.value if r else None for r in record.finish_reasons],
        "parameters": dict(record.parameters),
        "usage": [record.usage.prompt_tokens, record.usage.completion_tokens, record.usage.cached_tokens],
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "retrieved": [[c.document_id, c.chunk_index, c.score] for c in record.retrieved],
        "status": record.status.value,
        "error": record.error,
        "api_key_id": record.api_key_id,
        "user": record.user,
        "tenant": record.tenant,
    }


def record_from_dict(value: dict[str, Any]) -> CompletionRecord:
    """Raises ``KeyError``, ``ValueError`` or ``TypeError`` for something that is not a record."""
    prompt, completion, *cached = value["usage"]  # records spooled before cached tokens have two
    return CompletionRecord(
        id=str(value["id"]),
        conversation_id=str(value["conversation_id"]),
        created_at=datetime.fromisoformat(value["created_at"]),
        model=str(value["model"]),
        messages=tuple(message_from_dict(m) for m in value["messages"]),
        responses=tuple(message_from_dict(m) for m in value["responses"]),
        finish_reasons=tuple(FinishReason(r) if r else None for r in value["finish_reasons"]),
        parameters=dict(value["parameters"]),
        usage=Usage(
            prompt_tokens=int(prompt),
            completion_tokens=int(completion),
            cached_tokens=int(cached[0]) if cached else 0,
        ),
        latency_ms=float(value["latency_ms"]),
        ttft_ms=None if value["ttft_ms"] is None else float(value["ttft_ms"]),
        retrieved=tuple(
            RetrievedChunk(document_id=d, chunk_index=int(i), score=float(s))
            for d, i, s in value["retrieved"]
        ),
        status=CompletionStatus(value["status"]),
        error=value["error"],
        api_key_id=value["api_key_id"],
        user=value["user"],
        tenant=str(value.get("tenant", DEFAULT_TENANT)),  # records spooled before tenants: the default's
    )
