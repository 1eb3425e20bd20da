"""MindFu's HTTP response objects read back into domain types: the inverse of the edge's serializers
(``document_object``, ``conversation_object``, ``job_object``...), which the round-trip tests hold it to."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    Choice,
    FinishReason,
    Message,
    ModelInfo,
    Role,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    TopLogprob,
    Usage,
)
from mindfu_core.domain.conversations import (
    CompletionStatus,
    Conversation,
    ConversationSummary,
    Feedback,
    LoggedCompletion,
    RetrievedChunk,
)
from mindfu_core.domain.documents import Chunk, ChunkingPolicy, Document, Filter, ScoredChunk
from mindfu_core.domain.retrieval import RetrievalOptions, Source

Json = Mapping[str, Any]


def when(seconds: int | float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def at(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- chat -------------------------------------------------------------------------------------------------


def model_of(body: Json) -> ModelInfo:
    extra = body.get("mindfu") or {}
    return ModelInfo(
        id=body["id"],
        context_length=int(extra.get("context_length", 0)),
        owned_by=body.get("owned_by", "mindfu"),
        created=int(body.get("created", 0)),
        engine=extra.get("engine", ""),
        source=extra.get("source", ""),
        supports_tools=bool(extra.get("supports_tools", True)),
        supports_logprobs=bool(extra.get("supports_logprobs", False)),
    )


def usage_of(body: Json | None) -> Usage:
    if not body:
        return Usage()
    details = body.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(body.get("prompt_tokens", 0)),
        completion_tokens=int(body.get("completion_tokens", 0)),
        cached_tokens=int(details.get("cached_tokens", 0) or 0),
    )


def tool_call_of(body: Json) -> ToolCall:
    function = body.get("function") or {}
    return ToolCall(
        id=body.get("id", ""), name=function.get("name", ""), arguments=function.get("arguments", "")
    )


def message_of(body: Json) -> Message:
    """A message in the OpenAI chat format (``openai_message``'s inverse)."""
    return Message(
        role=Role(body["role"]),
        content=body.get("content"),
        tool_calls=tuple(tool_call_of(c) for c in body.get("tool_calls") or ()),
        tool_call_id=body.get("tool_call_id"),
        name=body.get("name"),
    )


def source_of(body: Json) -> Source:
    return Source(
        number=int(body["number"]),
        document_id=body["document_id"],
        name=body.get("name", ""),
        page=body.get("page"),
        chunk_index=int(body.get("chunk_index", 0)),
        score=float(body.get("score", 0.0)),
        excerpt=body.get("excerpt", ""),
    )


def _finish(value: str | None) -> FinishReason | None:
    return FinishReason(value) if value else None


def chat_logprobs_of(body: Json | None) -> tuple[TokenLogprob, ...] | None:
    if body is None:
        return None
    return tuple(
        TokenLogprob(
            token=entry["token"],
            logprob=float(entry["logprob"]),
            top=tuple(
                TopLogprob(token=t["token"], logprob=float(t["logprob"]))
                for t in entry.get("top_logprobs") or ()
            ),
        )
        for entry in body.get("content") or ()
    )


def text_logprobs_of(body: Json | None) -> tuple[TokenLogprob, ...] | None:
    if not body:
        return None
    tops = body.get("top_logprobs") or [{} for _ in body.get("tokens", ())]
    return tuple(
        TokenLogprob(
            token=token,
            logprob=float(logprob),
            top=tuple(TopLogprob(token=t, logprob=float(lp)) for t, lp in (top or {}).items()),
        )
        for token, logprob, top in zip(
            body.get("tokens", ()), body.get("token_logprobs", ()), tops, strict=False
        )
    )


def result_of(body: Json, *, chat: bool) -> ChatResult:
    """A ``chat.completion`` (or ``text_completion``) object."""
    choices = []
    for choice in body.get("choices") or ():
        if chat:
            message = choice["message"]
            reply = Message(
                role=Role.ASSISTANT,
                content=message.get("content"),
                tool_calls=tuple(tool_call_of(c) for c in message.get("tool_calls") or ()),
            )
            logprobs = chat_logprobs_of(choice.get("logprobs"))
        else:
            reply = Message(role=Role.ASSISTANT, content=choice.get("text", ""))
            logprobs = text_logprobs_of(choice.get("logprobs"))
        choices.append(
            Choice(
                index=int(choice.get("index", 0)),
                message=reply,
                finish_reason=_finish(choice.get("finish_reason")) or FinishReason.STOP,
                logprobs=logprobs,
            )
        )
    extra = body.get("mindfu") or {}
    return ChatResult(
        model=body.get("model", ""),
        choices=tuple(choices),
        usage=usage_of(body.get("usage")),
        sources=tuple(source_of(s) for s in extra.get("sources") or ()),
        id=body.get("id", ""),
        conversation_id=extra.get("conversation_id"),
    )


def deltas_of(chunk: Json, *, chat: bool) -> list[ChatDelta]:
    """The deltas one streamed chunk carries (none for the opening role chunk)."""
    found: list[ChatDelta] = []
    for choice in chunk.get("choices") or ():
        index = int(choice.get("index", 0))
        finish = _finish(choice.get("finish_reason"))
        if chat:
            delta = choice.get("delta") or {}
            content = delta.get("content") or ""
            pieces = tuple(
                ToolCallDelta(
                    index=int(piece.get("index", 0)),
                    id=piece.get("id"),
                    name=(piece.get("function") or {}).get("name"),
                    arguments=(piece.get("function") or {}).get("arguments") or "",
                )
                for piece in delta.get("tool_calls") or ()
            )
            logprobs = chat_logprobs_of(choice.get("logprobs")) or ()
        else:
            content, pieces = choice.get("text") or "", ()
            logprobs = text_logprobs_of(choice.get("logprobs")) or ()
        if content or pieces or logprobs or finish:
            found.append(
                ChatDelta(
                    index=index,
                    content=content,
                    tool_call_deltas=pieces,
                    logprobs=logprobs,
                    finish_reason=finish,
                )
            )
    if chunk.get("usage"):
        found.append(ChatDelta(usage=usage_of(chunk["usage"])))
    sources = (chunk.get("mindfu") or {}).get("sources")
    if sources:
        found.append(ChatDelta(sources=tuple(source_of(s) for s in sources)))
    return found


# --- documents and retrieval ------------------------------------------------------------------------------


def document_of(body: Json) -> Document:
    return Document(
        id=body["id"],
        collection=body["collection"],
        name=body["name"],
        sha256=body["sha256"],
        media_type=body["media_type"],
        size_bytes=int(body["size_bytes"]),
        chunk_count=int(body["chunk_count"]),
        embedding_model=body["embedding_model"],
        created_at=at(body["created_at"]),
        title=body.get("title"),
        metadata=dict(body.get("metadata") or {}),
    )


def hit_of(body: Json, collection: str) -> ScoredChunk:
    chunk = Chunk(
        id=body["id"],
        document_id=body["document_id"],
        collection=collection,
        index=int(body["chunk_index"]),
        text=body["text"],
        source=body.get("name", ""),
        page=body.get("page"),
        metadata=dict(body.get("metadata") or {}),
    )
    return ScoredChunk(chunk=chunk, score=float(body["score"]))


def filter_of(body: Json | None) -> Filter | None:
    if not body:
        return None
    return Filter(
        document_ids=tuple(body.get("document_ids") or ()), metadata=dict(body.get("metadata") or {})
    )


def defaults_of(body: Json) -> tuple[RetrievalOptions, ChunkingPolicy]:
    """``GET /v1/documents/defaults``: the server's retrieval options and chunking policy."""
    rag = body["rag"]
    options = RetrievalOptions(
        enabled=bool(rag["enabled"]),
        top_k=int(rag["top_k"]),
        min_score=rag.get("min_score"),
        collection=rag["collection"],
        where=filter_of(rag.get("filter")),
        hybrid=bool(rag.get("hybrid", False)),
    )
    chunking = body["chunking"]
    return options, ChunkingPolicy(size=int(chunking["size"]), overlap=int(chunking["overlap"]))


# --- conversations ----------------------------------------------------------------------------------------


def summary_of(body: Json) -> ConversationSummary:
    return ConversationSummary(
        id=body["id"],
        created_at=at(body["created_at"]),
        updated_at=at(body["updated_at"]),
        model=body.get("model", ""),
        message_count=int(body.get("message_count", 0)),
        completion_count=int(body.get("completion_count", 0)),
        last_status=CompletionStatus(body.get("last_status", "ok")),
        rating=body.get("rating"),
        user=body.get("user"),
        title=body.get("title") or "",
    )


def completion_of(body: Json) -> LoggedCompletion:
    choices = body.get("choices") or ()
    return LoggedCompletion(
        id=body["id"],
        created_at=at(body["created"]),
        model=body.get("model", ""),
        message_count=int(body.get("message_count", 0)),
        responses=tuple(message_of(c["message"]) for c in choices),
        finish_reasons=tuple(_finish(c.get("finish_reason")) for c in choices),
        parameters=dict(body.get("parameters") or {}),
        usage=usage_of(body.get("usage")),
        latency_ms=float(body.get("latency_ms") or 0.0),
        ttft_ms=body.get("ttft_ms"),
        retrieved=tuple(
            RetrievedChunk(
                document_id=r["document_id"], chunk_index=int(r["chunk_index"]), score=float(r["score"])
            )
            for r in body.get("retrieved") or ()
        ),
        status=CompletionStatus(body.get("status", "ok")),
        error=body.get("error"),
        api_key_id=None,  # not shown over HTTP
        user=body.get("user"),
    )


def feedback_of(body: Json) -> Feedback:
    return Feedback(
        id=body["id"],
        conversation_id=body["conversation_id"],
        rating=int(body["rating"]),
        comment=body.get("comment"),
        completion_id=body.get("completion_id"),
        created_at=at(body["created"]),
    )


def conversation_of(body: Json) -> Conversation:
    return Conversation(
        summary=summary_of(body),
        messages=tuple(message_of(m) for m in body.get("messages") or ()),
        completions=tuple(completion_of(c) for c in body.get("completions") or ()),
        feedback=tuple(feedback_of(f) for f in body.get("feedback") or ()),
        tools=tuple(dict(t) for t in body.get("tools") or ()),
    )
