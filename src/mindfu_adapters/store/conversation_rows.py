"""The SQL conversation store's rows and the domain objects they hold, its filters and its page cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from mindfu_adapters.store.codec import (
    message_from_dict,
    message_to_dict,
    tool_calls_from_json,
    tool_calls_to_json,
)
from mindfu_adapters.store.tables import conversations
from mindfu_core.domain.chat import FinishReason, Message, Role, Usage
from mindfu_core.domain.conversation_merge import ReplyStats
from mindfu_core.domain.conversations import (
    CompletionRecord,
    CompletionStatus,
    ConversationFilter,
    ConversationSummary,
    Feedback,
    LoggedCompletion,
    RetrievedChunk,
)
from mindfu_core.errors import InvalidRequest


def new_conversation(record: CompletionRecord) -> dict[str, Any]:
    return {
        "id": record.conversation_id,
        "created_at": record.created_at,
        "updated_at": record.created_at,
        "model": record.model,
        "title": "",
        "message_count": 0,
        "completion_count": 0,
        "assistant_turns": 0,
        "min_response_chars": None,
        "max_response_chars": None,
        "head_hash": None,
        "last_status": record.status.value,
        "rating": None,
        "api_key_id": record.api_key_id,
        "user_name": record.user,
        "tools": None,
        "tenant": record.tenant,
    }


def count_reply(row: dict[str, Any], chars: int) -> None:
    before = ReplyStats(row["assistant_turns"], row["min_response_chars"], row["max_response_chars"])
    stats = before.add(chars)
    row["assistant_turns"] = stats.turns
    row["min_response_chars"], row["max_response_chars"] = stats.min_chars, stats.max_chars


def tools_of(parameters: Mapping[str, Any]) -> list[Any] | None:
    tools = parameters.get("tools")
    return list(tools) if tools else None


def tool_list(row: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    return tuple(row["tools"] or ())


def message_row(conversation_id: str, position: int, message: Message, chain_hash: str) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "position": position,
        "role": message.role.value,
        "content": message.content,
        "tool_calls": tool_calls_to_json(message.tool_calls),
        "tool_call_id": message.tool_call_id,
        "name": message.name,
        "chain_hash": chain_hash,
    }


def message_of(row: Mapping[str, Any]) -> Message:
    return Message(
        role=Role(row["role"]),
        content=row["content"],
        tool_calls=tool_calls_from_json(row["tool_calls"]),
        tool_call_id=row["tool_call_id"],
        name=row["name"],
    )


def completion_row(record: CompletionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "conversation_id": record.conversation_id,
        "created_at": record.created_at,
        "model": record.model,
        "message_count": len(record.messages),
        "responses": [message_to_dict(m) for m in record.responses],
        "finish_reason": record.finish_reason.value if record.finish_reason else None,
        "finish_reasons": [r.value if r else None for r in record.finish_reasons],
        "parameters": dict(record.parameters),
        "prompt_tokens": record.usage.prompt_tokens,
        "completion_tokens": record.usage.completion_tokens,
        "cached_tokens": record.usage.cached_tokens,
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "retrieved": [
            {"document_id": c.document_id, "chunk_index": c.chunk_index, "score": c.score}
            for c in record.retrieved
        ],
        "status": record.status.value,
        "error": record.error,
        "api_key_id": record.api_key_id,
        "user_name": record.user,
    }


def completion_of(row: Mapping[str, Any]) -> LoggedCompletion:
    return LoggedCompletion(
        id=row["id"],
        created_at=row["created_at"],
        model=row["model"],
        message_count=row["message_count"],
        responses=tuple(message_from_dict(m) for m in row["responses"]),
        finish_reasons=tuple(FinishReason(r) if r else None for r in row["finish_reasons"]),
        parameters=dict(row["parameters"]),
        usage=Usage(
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            cached_tokens=row["cached_tokens"],
        ),
        latency_ms=row["latency_ms"],
        ttft_ms=row["ttft_ms"],
        retrieved=tuple(
            RetrievedChunk(document_id=c["document_id"], chunk_index=c["chunk_index"], score=c["score"])
            for c in row["retrieved"]
        ),
        status=CompletionStatus(row["status"]),
        error=row["error"],
        api_key_id=row["api_key_id"],
        user=row["user_name"],
    )


def feedback_of(row: Mapping[str, Any]) -> Feedback:
    return Feedback(
        id=row["id"],
        conversation_id=row["conversation_id"],
        rating=row["rating"],
        comment=row["comment"],
        completion_id=row["completion_id"],
        created_at=row["created_at"],
    )


def summary_of(row: Mapping[str, Any]) -> ConversationSummary:
    return ConversationSummary(
        id=row["id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model=row["model"],
        message_count=row["message_count"],
        completion_count=row["completion_count"],
        last_status=CompletionStatus(row["last_status"]),
        rating=row["rating"],
        api_key_id=row["api_key_id"],
        user=row["user_name"],
        title=row["title"],
        tenant=row["tenant"],
    )


def conditions(where: ConversationFilter | None) -> list[Any]:
    if where is None:
        return []
    c = conversations.c
    conditions: list[Any] = []
    if where.since is not None:
        conditions.append(c.updated_at >= where.since)
    if where.until is not None:
        conditions.append(c.updated_at < where.until)
    if where.model is not None:
        conditions.append(c.model == where.model)
    if where.status is not None:
        conditions.append(c.last_status == where.status.value)
    if where.min_rating is not None:
        conditions.append(c.rating >= where.min_rating)
    if where.max_rating is not None:
        conditions.append(c.rating <= where.max_rating)
    if where.rated is not None:
        conditions.append(c.rating.is_not(None) if where.rated else c.rating.is_(None))
    if where.min_turns is not None:
        conditions.append(c.assistant_turns >= where.min_turns)
    if where.min_response_chars is not None:
        conditions.append(c.min_response_chars >= where.min_response_chars)
    if where.max_response_chars is not None:
        conditions.append(c.max_response_chars <= where.max_response_chars)
    if where.api_key_id is not None:
        conditions.append(c.api_key_id == where.api_key_id)
    if where.user is not None:
        conditions.append(c.user_name == where.user)
    if where.tenant is not None:
        conditions.append(c.tenant == where.tenant)
    return conditions


def encode_cursor(updated_at: datetime, conversation_id: str) -> str:
    raw = json.dumps([updated_at.astimezone(UTC).isoformat(), conversation_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, conversation_id = json.loads(raw)
        return datetime.fromisoformat(when), str(conversation_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("not a cursor this server handed out", param="cursor") from None


def one_of(column: Any, values: list[str]) -> Any:
    """``column IN (...)`` with the values written into the statement: a prepared statement with the same
    number of parameters gets PostgreSQL's generic plan after five runs, which on a table not yet analyzed
    is a sequential scan (11 ms a batch instead of 0.3 ms in the throughput bench)."""
    return column.in_(sa.bindparam(f"one_of_{column.name}", values, expanding=True, literal_execute=True))
