"""Conversation logging types: what one completion leaves behind, conversations, feedback and filters."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mindfu_core.domain.chat import FinishReason, Message, Usage
from mindfu_core.domain.pages import Page
from mindfu_core.domain.principals import DEFAULT_TENANT
from mindfu_core.errors import InvalidRequest


class CompletionStatus(enum.StrEnum):
    """How a logged completion ended."""

    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievedChunk:
    """A chunk that grounded a completion: the document, the chunk's place in it, and its score."""

    document_id: str
    chunk_index: int
    score: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletionRecord:
    """Everything one chat completion leaves for the log; ``id`` (the completion id) makes writes idempotent.

    ``messages`` are the request's messages as the client sent them (before retrieval augmentation);
    ``responses`` holds one assistant message per choice (``responses[0]`` continues the conversation).
    """

    id: str
    conversation_id: str
    created_at: datetime
    model: str
    messages: tuple[Message, ...]
    responses: tuple[Message, ...] = ()
    finish_reasons: tuple[FinishReason | None, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    retrieved: tuple[RetrievedChunk, ...] = ()
    status: CompletionStatus = CompletionStatus.OK
    error: str | None = None
    api_key_id: str | None = None
    user: str | None = None
    tenant: str = DEFAULT_TENANT  # whose conversation it is: a record never joins another tenant's

    @property
    def finish_reason(self) -> FinishReason | None:
        return self.finish_reasons[0] if self.finish_reasons else None

    @property
    def transcript(self) -> tuple[Message, ...]:
        """The conversation after this completion: the request's messages and, when it finished normally,
        the first choice's reply (the partial reply of an error or a cancelled stream stays in its
        completion)."""
        if self.status is not CompletionStatus.OK:
            return self.messages
        return self.messages + self.responses[:1]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """Who asks, and in which conversation: what an edge knows about a chat request beyond its body."""

    conversation_id: str | None = None  # named by the client; otherwise found or started by the recorder
    api_key_id: str | None = None  # the id of the caller's API key, never the key
    tenant: str = DEFAULT_TENANT  # the caller's: the conversations it may continue and the one it writes
    user: str | None = None  # the request's ``user`` field
    log: bool = True
    # continue after this logged completion: its transcript comes before the request's messages
    previous_completion_id: str | None = None


#: A call with nothing known about its caller or conversation
NO_CONTEXT = CallContext()


@dataclass(frozen=True, slots=True, kw_only=True)
class Feedback:
    """A rating (-1 bad, 0 neutral, 1 good, or a 1..5 scale) and an optional comment."""

    id: str
    conversation_id: str
    rating: int
    comment: str | None = None
    completion_id: str | None = None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationSummary:
    """One line of a conversation listing."""

    id: str
    created_at: datetime
    updated_at: datetime
    model: str
    message_count: int
    completion_count: int
    last_status: CompletionStatus
    rating: int | None = None  # the latest feedback's rating
    api_key_id: str | None = None
    user: str | None = None
    title: str = ""  # the start of the first user message
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedCompletion:
    """A logged completion as read back (without the request's messages, which are the conversation's)."""

    id: str
    created_at: datetime
    model: str
    message_count: int  # how many conversation messages the request carried
    responses: tuple[Message, ...]
    finish_reasons: tuple[FinishReason | None, ...]
    parameters: Mapping[str, Any]
    usage: Usage
    latency_ms: float
    ttft_ms: float | None
    retrieved: tuple[RetrievedChunk, ...]
    status: CompletionStatus
    error: str | None
    api_key_id: str | None
    user: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """A conversation: its messages in order, the completions that produced them, and its feedback."""

    summary: ConversationSummary
    messages: tuple[Message, ...]
    completions: tuple[LoggedCompletion, ...] = ()
    feedback: tuple[Feedback, ...] = ()
    tools: tuple[Mapping[str, Any], ...] = ()  # the tools offered in the latest completion (OpenAI shape)

    @property
    def id(self) -> str:
        return self.summary.id


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationFilter:
    """Which conversations a listing, an export or a retention sweep covers (every field optional)."""

    since: datetime | None = None  # updated at or after
    until: datetime | None = None  # updated before
    model: str | None = None
    status: CompletionStatus | None = None  # of the latest completion
    min_rating: int | None = None  # latest feedback's rating at least
    max_rating: int | None = None
    rated: bool | None = None  # only rated (True) or only unrated (False) conversations
    min_turns: int | None = None  # assistant messages
    min_response_chars: int | None = None  # every assistant message at least this long
    max_response_chars: int | None = None  # every assistant message at most this long
    api_key_id: str | None = None
    user: str | None = None
    tenant: str | None = None  # None: every tenant's (the operator's own tools); edges set the caller's


#: the numbers of a filter are compared in the database: they must fit its integers
FILTER_INT_RANGE = (-(2**31), 2**31 - 1)


def check_filter(where: ConversationFilter | None) -> None:
    """``InvalidRequest`` naming the field for a number no database column can hold (a SQLite overflow
    would otherwise be a server error)."""
    if where is None:
        return
    low, high = FILTER_INT_RANGE
    numbers = {
        "min_rating": where.min_rating,
        "max_rating": where.max_rating,
        "min_turns": where.min_turns,
        "min_response_chars": where.min_response_chars,
        "max_response_chars": where.max_response_chars,
    }
    for name, value in numbers.items():
        if value is not None and not low <= value <= high:
            raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}", param=name)


#: A page of a conversation listing, newest first
ConversationPage = Page[ConversationSummary]
#: The longest page of a conversation listing
MAX_PAGE = 200


def message_fingerprint(message: Message) -> dict[str, Any]:
    """The parts of a message that identify it when a client sends a conversation back."""
    return {
        "role": message.role.value,
        "content": message.content or "",
        "tool_calls": [[c.id, c.name, c.arguments] for c in message.tool_calls],
        "tool_call_id": message.tool_call_id or "",
    }


def chain_hashes(messages: Sequence[Message], start: str = "") -> list[str]:
    """A hash per message of everything up to and including it: equal heads mean equal histories."""
    hashes: list[str] = []
    head = start
    for message in messages:
        encoded = json.dumps(message_fingerprint(message), ensure_ascii=False, sort_keys=True)
        head = hashlib.sha256((head + "\n" + encoded).encode("utf-8")).hexdigest()
        hashes.append(head)
    return hashes


def foreign_branch(record: CompletionRecord) -> str:
    """Where a record naming another tenant's conversation is kept instead: a conversation of the record's
    own tenant, the same for every record of that tenant naming that id (so its own turns stay together)."""
    key = f"{record.tenant}\x00{record.conversation_id}".encode()
    return f"conv_{hashlib.sha256(key).hexdigest()[:32]}"
