"""Logged conversations: filters, summaries, completions, feedback."""

from __future__ import annotations

import json

from mindfu_core.domain.chat import FinishReason, Message
from mindfu_core.domain.conversations import (
    CompletionStatus,
    Conversation,
    ConversationFilter,
    ConversationSummary,
    Feedback,
    LoggedCompletion,
    RetrievedChunk,
    check_filter,
)
from mindfu_core.errors import InvalidRequest
from mindfu_grpc._pb.mindfu.v1 import chat_pb2
from mindfu_grpc._pb.mindfu.v1 import conversations_pb2 as pb
from mindfu_grpc.mapping.chat import message_from_pb, message_to_pb
from mindfu_grpc.mapping.common import from_timestamp, json_object, json_text, optional, timestamp
from mindfu_grpc.mapping.results import finish_from_pb, finish_to_pb, usage_from_pb, usage_to_pb

_STATUS: dict[int, CompletionStatus] = {
    pb.COMPLETION_STATUS_OK: CompletionStatus.OK,
    pb.COMPLETION_STATUS_ERROR: CompletionStatus.ERROR,
    pb.COMPLETION_STATUS_CANCELLED: CompletionStatus.CANCELLED,
}
_STATUS_VALUES = {status: pb.CompletionStatus.ValueType(value) for value, status in _STATUS.items()}


def status_from_pb(value: int) -> CompletionStatus | None:
    if value == pb.COMPLETION_STATUS_UNSPECIFIED:
        return None
    try:
        return _STATUS[value]
    except KeyError:
        raise InvalidRequest("status is not a known completion status", param="filter.status") from None


def filter_from_pb(where: pb.ConversationFilter) -> ConversationFilter:
    return ConversationFilter(
        since=from_timestamp(where.since) if where.HasField("since") else None,
        until=from_timestamp(where.until) if where.HasField("until") else None,
        model=optional(where, "model"),
        status=status_from_pb(where.status),
        min_rating=optional(where, "min_rating"),
        max_rating=optional(where, "max_rating"),
        rated=optional(where, "rated"),
        user=optional(where, "user"),
        min_turns=optional(where, "min_turns"),
        min_response_chars=optional(where, "min_response_chars"),
        max_response_chars=optional(where, "max_response_chars"),
    )


def filter_to_pb(where: ConversationFilter | None) -> pb.ConversationFilter:
    out = pb.ConversationFilter()
    if where is None:
        return out
    check_filter(where)  # the message's int32 fields cannot carry more
    if where.since is not None:
        out.since.CopyFrom(timestamp(where.since))
    if where.until is not None:
        out.until.CopyFrom(timestamp(where.until))
    if where.status is not None:
        out.status = _STATUS_VALUES[where.status]
    for name in (
        "model", "min_rating", "max_rating", "rated", "user", "min_turns", "min_response_chars",
        "max_response_chars",
    ):  # fmt: skip
        value = getattr(where, name)
        if value is not None:
            setattr(out, name, value)
    return out


def summary_to_pb(summary: ConversationSummary) -> pb.ConversationSummary:
    out = pb.ConversationSummary(
        id=summary.id,
        created_at=timestamp(summary.created_at),
        updated_at=timestamp(summary.updated_at),
        model=summary.model,
        title=summary.title,
        message_count=summary.message_count,
        completion_count=summary.completion_count,
        last_status=_STATUS_VALUES[summary.last_status],
    )
    if summary.rating is not None:
        out.rating = summary.rating
    if summary.user is not None:
        out.user = summary.user
    return out


def summary_from_pb(summary: pb.ConversationSummary) -> ConversationSummary:
    return ConversationSummary(
        id=summary.id,
        created_at=from_timestamp(summary.created_at),
        updated_at=from_timestamp(summary.updated_at),
        model=summary.model,
        title=summary.title,
        message_count=summary.message_count,
        completion_count=summary.completion_count,
        last_status=status_from_pb(summary.last_status) or CompletionStatus.OK,
        rating=optional(summary, "rating"),
        user=optional(summary, "user"),
    )


def _completion_to_pb(completion: LoggedCompletion) -> pb.LoggedCompletion:
    reasons = completion.finish_reasons
    out = pb.LoggedCompletion(
        id=completion.id,
        created_at=timestamp(completion.created_at),
        model=completion.model,
        message_count=completion.message_count,
        choices=[
            chat_pb2.Choice(
                index=index,
                message=message_to_pb(message),
                finish_reason=finish_to_pb(reasons[index] if index < len(reasons) else None),
            )
            for index, message in enumerate(completion.responses)
        ],
        parameters_json=json_text(completion.parameters),
        usage=usage_to_pb(completion.usage),
        latency_ms=completion.latency_ms,
        retrieved=[
            pb.RetrievedChunkRef(document_id=c.document_id, chunk_index=c.chunk_index, score=c.score)
            for c in completion.retrieved
        ],
        status=_STATUS_VALUES[completion.status],
    )
    for name in ("ttft_ms", "error", "user"):
        value = getattr(completion, name)
        if value is not None:
            setattr(out, name, value)
    return out


def _completion_from_pb(completion: pb.LoggedCompletion) -> LoggedCompletion:
    ordered = sorted(completion.choices, key=lambda c: c.index)
    responses: list[Message] = [message_from_pb(c.message, "choices") for c in ordered]
    reasons: list[FinishReason | None] = [finish_from_pb(c.finish_reason) for c in ordered]
    return LoggedCompletion(
        id=completion.id,
        created_at=from_timestamp(completion.created_at),
        model=completion.model,
        message_count=completion.message_count,
        responses=tuple(responses),
        finish_reasons=tuple(reasons),
        parameters=json_object(completion.parameters_json, "parameters_json"),
        usage=usage_from_pb(completion.usage),
        latency_ms=completion.latency_ms,
        ttft_ms=optional(completion, "ttft_ms"),
        retrieved=tuple(
            RetrievedChunk(document_id=c.document_id, chunk_index=c.chunk_index, score=c.score)
            for c in completion.retrieved
        ),
        status=status_from_pb(completion.status) or CompletionStatus.OK,
        error=optional(completion, "error"),
        api_key_id=None,
        user=optional(completion, "user"),
    )


def feedback_to_pb(feedback: Feedback) -> pb.Feedback:
    out = pb.Feedback(
        id=feedback.id,
        conversation_id=feedback.conversation_id,
        rating=feedback.rating,
        created_at=timestamp(feedback.created_at),
    )
    if feedback.comment is not None:
        out.comment = feedback.comment
    if feedback.completion_id is not None:
        out.completion_id = feedback.completion_id
    return out


def feedback_from_pb(feedback: pb.Feedback) -> Feedback:
    return Feedback(
        id=feedback.id,
        conversation_id=feedback.conversation_id,
        rating=feedback.rating,
        comment=optional(feedback, "comment"),
        completion_id=optional(feedback, "completion_id"),
        created_at=from_timestamp(feedback.created_at),
    )


def conversation_to_pb(conversation: Conversation) -> pb.Conversation:
    return pb.Conversation(
        summary=summary_to_pb(conversation.summary),
        messages=[message_to_pb(m) for m in conversation.messages],
        completions=[_completion_to_pb(c) for c in conversation.completions],
        feedback=[feedback_to_pb(f) for f in conversation.feedback],
        tools_json=[json.dumps(dict(t), ensure_ascii=False) for t in conversation.tools],
    )


def conversation_from_pb(conversation: pb.Conversation) -> Conversation:
    return Conversation(
        summary=summary_from_pb(conversation.summary),
        messages=tuple(message_from_pb(m, "messages") for m in conversation.messages),
        completions=tuple(_completion_from_pb(c) for c in conversation.completions),
        feedback=tuple(feedback_from_pb(f) for f in conversation.feedback),
        tools=tuple(json_object(t, "tools_json") for t in conversation.tools_json),
    )
