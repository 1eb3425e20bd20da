"""Logged conversations: list (filtered, by cursor), read, delete, rate, and export as fine-tuning JSONL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, StrictInt

from mindfu_core.domain.closing import aclose
from mindfu_core.domain.conversations import (
    MAX_PAGE,
    CompletionStatus,
    Conversation,
    ConversationFilter,
    ConversationSummary,
    Feedback,
    LoggedCompletion,
)
from mindfu_core.domain.examples import openai_message
from mindfu_http.auth import tenant_of
from mindfu_http.deps import conversation_service
from mindfu_http.openai.wire import usage_dict
from mindfu_http.responses import (
    CompletionObject,
    ConversationDeleted,
    ConversationList,
    ConversationObject,
    ConversationSummaryObject,
    FeedbackObject,
)
from mindfu_http.streaming import ClosingStreamingResponse, first_and_rest

router = APIRouter(prefix="/v1", tags=["conversations"])

DEFAULT_PAGE = 20
NDJSON = "application/x-ndjson"


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: StrictInt
    comment: str | None = None
    completion_id: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _unix(value: datetime) -> int:
    return int((value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp())


async def review_filter(
    request: Request,
    since: Annotated[
        datetime | None, Query(description="updated at or after (ISO 8601; naive is UTC)")
    ] = None,
    until: Annotated[datetime | None, Query(description="updated before (ISO 8601; naive is UTC)")] = None,
    model: str | None = None,
    status: Annotated[CompletionStatus | None, Query(description="of the latest completion")] = None,
    min_rating: Annotated[int | None, Query(description="latest rating at least")] = None,
    max_rating: Annotated[int | None, Query(description="latest rating at most")] = None,
    rated: Annotated[bool | None, Query(description="only rated (true) or unrated (false)")] = None,
    user: Annotated[str | None, Query(description="the requests' `user` field")] = None,
) -> ConversationFilter:
    return ConversationFilter(
        tenant=await tenant_of(request),  # the caller's conversations only
        since=_utc(since),
        until=_utc(until),
        model=model,
        status=status,
        min_rating=min_rating,
        max_rating=max_rating,
        rated=rated,
        user=user,
    )


def export_filter(
    where: Annotated[ConversationFilter, Depends(review_filter)],
    min_turns: Annotated[int | None, Query(ge=0, description="assistant messages at least")] = None,
    min_response_chars: Annotated[
        int | None, Query(ge=0, description="every assistant message at least this long")
    ] = None,
    max_response_chars: Annotated[
        int | None, Query(ge=0, description="every assistant message at most this long")
    ] = None,
) -> ConversationFilter:
    return replace(
        where,
        min_turns=min_turns,
        min_response_chars=min_response_chars,
        max_response_chars=max_response_chars,
    )


def summary_object(summary: ConversationSummary) -> ConversationSummaryObject:
    return {
        "id": summary.id,
        "object": "conversation",
        "created_at": _unix(summary.created_at),
        "updated_at": _unix(summary.updated_at),
        "model": summary.model,
        "title": summary.title,
        "message_count": summary.message_count,
        "completion_count": summary.completion_count,
        "last_status": summary.last_status.value,
        "rating": summary.rating,
        "user": summary.user,
    }


def completion_object(completion: LoggedCompletion) -> CompletionObject:
    reasons = [r.value if r is not None else None for r in completion.finish_reasons]
    return {
        "id": completion.id,
        "object": "conversation.completion",
        "created": _unix(completion.created_at),
        "model": completion.model,
        "message_count": completion.message_count,
        "choices": [
            {
                "index": index,
                "message": openai_message(message),
                "finish_reason": reasons[index] if index < len(reasons) else None,
            }
            for index, message in enumerate(completion.responses)
        ],
        "parameters": dict(completion.parameters),
        "usage": usage_dict(completion.usage),
        "latency_ms": completion.latency_ms,
        "ttft_ms": completion.ttft_ms,
        "retrieved": [
            {"document_id": c.document_id, "chunk_index": c.chunk_index, "score": c.score}
            for c in completion.retrieved
        ],
        "status": completion.status.value,
        "error": completion.error,
        "user": completion.user,
    }


def feedback_object(feedback: Feedback) -> FeedbackObject:
    return {
        "id": feedback.id,
        "object": "conversation.feedback",
        "conversation_id": feedback.conversation_id,
        "rating": feedback.rating,
        "comment": feedback.comment,
        "completion_id": feedback.completion_id,
        "created": _unix(feedback.created_at),
    }


def conversation_object(conversation: Conversation) -> ConversationObject:
    return {
        **summary_object(conversation.summary),
        "messages": [openai_message(m) for m in conversation.messages],
        "completions": [completion_object(c) for c in conversation.completions],
        "feedback": [feedback_object(f) for f in conversation.feedback],
        "tools": [dict(t) for t in conversation.tools],
    }


@router.get("/conversations", summary="List logged conversations, most recently updated first")
async def list_conversations(
    request: Request,
    where: Annotated[ConversationFilter, Depends(review_filter)],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    after: Annotated[str | None, Query(description="the `next_cursor` of the previous page")] = None,
) -> ConversationList:
    page = await conversation_service(request).list(where, limit=limit, cursor=after)
    return {
        "object": "list",
        "data": [summary_object(s) for s in page.items],
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }


@router.get(
    "/conversations/export",
    summary="Matching conversations as OpenAI chat fine-tuning JSONL, oldest first (streamed)",
    response_class=StreamingResponse,
)
async def export_conversations(
    request: Request,
    where: Annotated[ConversationFilter, Depends(export_filter)],
    shape: Annotated[
        Literal["finetune", "conversations"],
        Query(
            alias="format",
            description="finetune: a chat fine-tuning example per line; conversations: conversation objects",
        ),
    ] = "finetune",
) -> StreamingResponse:
    service = conversation_service(request)
    lines: AsyncIterator[dict[str, Any]] = (
        service.export_examples(where) if shape == "finetune" else _objects(service.export(where))
    )
    # the first line is read before answering, so a failure to start is an ordinary error response
    first, rest = await first_and_rest(lines)
    return ClosingStreamingResponse(_lines(first, rest), media_type=NDJSON)


async def _objects(conversations: AsyncIterator[Conversation]) -> AsyncIterator[dict[str, Any]]:
    try:
        async for conversation in conversations:
            yield dict(conversation_object(conversation))
    finally:
        await aclose(conversations)


@router.get(
    "/conversations/completions/{completion_id}", summary="The conversation that holds a logged completion"
)
async def conversation_of_completion(completion_id: str, request: Request) -> ConversationObject:
    found = await conversation_service(request).of_completion(completion_id, tenant=await tenant_of(request))
    return conversation_object(found)


async def _lines(first: dict[str, Any] | None, rest: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        if first is None:
            return
        yield orjson.dumps(first) + b"\n"
        async for example in rest:
            yield orjson.dumps(example) + b"\n"
    finally:
        await aclose(rest)


@router.get("/conversations/{conversation_id}", summary="One conversation: messages, completions, feedback")
async def get_conversation(conversation_id: str, request: Request) -> ConversationObject:
    found = await conversation_service(request).get(conversation_id, tenant=await tenant_of(request))
    return conversation_object(found)


@router.delete(
    "/conversations/{conversation_id}", summary="Delete a conversation and everything logged with it"
)
async def delete_conversation(conversation_id: str, request: Request) -> ConversationDeleted:
    await conversation_service(request).delete(conversation_id, tenant=await tenant_of(request))
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


@router.post(
    "/conversations/{conversation_id}/feedback", summary="Rate a conversation or one of its completions"
)
async def add_feedback(conversation_id: str, body: FeedbackIn, request: Request) -> FeedbackObject:
    feedback = await conversation_service(request).add_feedback(
        conversation_id,
        rating=body.rating,
        comment=body.comment,
        completion_id=body.completion_id,
        tenant=await tenant_of(request),
    )
    return feedback_object(feedback)
