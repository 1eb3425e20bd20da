"""InMemoryConversationStore: the ConversationStore held in this process, for library users and tests."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from mindfu_core.domain.chat import Message
from mindfu_core.domain.conversation_merge import ReplyStats, conversation_title, plan_merge
from mindfu_core.domain.conversations import (
    CompletionRecord,
    CompletionStatus,
    Conversation,
    ConversationFilter,
    ConversationPage,
    ConversationSummary,
    Feedback,
    LoggedCompletion,
    chain_hashes,
    foreign_branch,
)
from mindfu_core.errors import InvalidRequest, NotFound


@dataclass(slots=True)
class _Entry:
    """One conversation as this store keeps it (mutable; readers get frozen domain objects)."""

    id: str
    created_at: datetime
    updated_at: datetime
    model: str
    last_status: CompletionStatus
    api_key_id: str | None
    user: str | None
    tenant: str
    title: str = ""
    tools: tuple[Mapping[str, Any], ...] = ()
    messages: list[Message] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)  # chain hash per message
    completions: list[LoggedCompletion] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)

    @property
    def key(self) -> tuple[datetime, str]:
        return self.updated_at, self.id

    @property
    def rating(self) -> int | None:
        if not self.feedback:
            return None
        return max(self.feedback, key=lambda f: (f.created_at, f.id)).rating

    def summary(self) -> ConversationSummary:
        return ConversationSummary(
            id=self.id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            model=self.model,
            message_count=len(self.messages),
            completion_count=len(self.completions),
            last_status=self.last_status,
            rating=self.rating,
            api_key_id=self.api_key_id,
            user=self.user,
            title=self.title,
            tenant=self.tenant,
        )

    def conversation(self, *, details: bool = True) -> Conversation:
        return Conversation(
            summary=self.summary(),
            messages=tuple(self.messages),
            completions=tuple(sorted(self.completions, key=lambda c: (c.created_at, c.id)))
            if details
            else (),
            feedback=tuple(sorted(self.feedback, key=lambda f: (f.created_at, f.id))) if details else (),
            tools=self.tools,
        )

    def apply(self, record: CompletionRecord) -> None:
        """Merge the record's transcript into the stored messages (``plan_merge``)."""
        transcript = record.transcript
        hashes = chain_hashes(transcript)
        head = self.hashes[-1] if self.hashes else None
        plan = plan_merge(hashes, stored_count=len(self.hashes), head_hash=head, stored_hashes=self.hashes)
        assert plan is not None  # every stored hash was given
        del self.messages[plan.keep :], self.hashes[plan.keep :]
        self.messages.extend(transcript[i] for i in plan.writes)
        self.hashes.extend(hashes[i] for i in plan.writes)
        if not self.title:
            self.title = conversation_title(transcript)
        self.updated_at = max(self.updated_at, record.created_at)
        self.model = record.model
        self.last_status = record.status
        self.api_key_id = record.api_key_id
        self.user = record.user
        tools = record.parameters.get("tools")
        self.tools = tuple(tools) if tools else ()
        self.completions.append(_logged(record))

    def matches(self, where: ConversationFilter | None) -> bool:
        if where is None:
            return True
        rating = self.rating
        replies = ReplyStats.of(self.messages)
        checks = (
            where.since is None or self.updated_at >= where.since,
            where.until is None or self.updated_at < where.until,
            where.model is None or self.model == where.model,
            where.status is None or self.last_status is where.status,
            where.min_rating is None or (rating is not None and rating >= where.min_rating),
            where.max_rating is None or (rating is not None and rating <= where.max_rating),
            where.rated is None or (rating is not None) == where.rated,
            where.min_turns is None or replies.turns >= where.min_turns,
            where.min_response_chars is None
            or (replies.min_chars is not None and replies.min_chars >= where.min_response_chars),
            where.max_response_chars is None
            or (replies.max_chars is not None and replies.max_chars <= where.max_response_chars),
            where.api_key_id is None or self.api_key_id == where.api_key_id,
            where.user is None or self.user == where.user,
            where.tenant is None or self.tenant == where.tenant,
        )
        return all(checks)


class InMemoryConversationStore:
    """A ``ConversationStore`` in this process's memory: nothing survives a restart.

    Every method finishes without awaiting, so each runs as one step of the event loop: a batch of
    records is applied whole, and readers never see half of it.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._completion_ids: dict[str, str] = {}  # completion id -> conversation id

    async def record(self, records: Sequence[CompletionRecord]) -> int:
        fresh = 0
        for record in records:
            if record.id in self._completion_ids:
                continue
            entry = self._entries.get(record.conversation_id)
            if entry is not None and entry.tenant != record.tenant:  # never written to: one of its own
                record = replace(record, conversation_id=foreign_branch(record))
                entry = self._entries.get(record.conversation_id)
            if entry is None:
                entry = self._entries[record.conversation_id] = _Entry(
                    id=record.conversation_id,
                    created_at=record.created_at,
                    updated_at=record.created_at,
                    model=record.model,
                    last_status=record.status,
                    api_key_id=record.api_key_id,
                    user=record.user,
                    tenant=record.tenant,
                )
            entry.apply(record)
            self._completion_ids[record.id] = record.conversation_id
            fresh += 1
        return fresh

    async def find_by_head(self, head_hash: str, tenant: str) -> str | None:
        found = [
            e for e in self._entries.values() if e.hashes and e.hashes[-1] == head_hash and e.tenant == tenant
        ]
        return max(found, key=lambda e: e.key).id if found else None

    async def find_completion(self, completion_id: str) -> str | None:
        found = self._completion_ids.get(completion_id)
        return found if found in self._entries else None

    async def get(self, conversation_id: str) -> Conversation | None:
        entry = self._entries.get(conversation_id)
        return entry.conversation() if entry is not None else None

    async def list(
        self, where: ConversationFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        after = _decode_cursor(cursor) if cursor is not None else None
        found = sorted(
            (e for e in self._entries.values() if e.matches(where) and (after is None or e.key < after)),
            key=lambda e: e.key,
            reverse=True,
        )
        items = tuple(e.summary() for e in found[:limit])
        next_cursor = _encode_cursor(found[limit - 1].key) if len(found) > limit else None
        return ConversationPage(items=items, next_cursor=next_cursor)

    async def delete(self, conversation_id: str) -> bool:
        entry = self._entries.pop(conversation_id, None)
        if entry is None:
            return False
        for completion in entry.completions:
            self._completion_ids.pop(completion.id, None)
        return True

    async def add_feedback(self, feedback: Feedback) -> None:
        entry = self._entries.get(feedback.conversation_id)
        if entry is None:
            raise NotFound(f"No conversation with id '{feedback.conversation_id}'", param="conversation_id")
        if (
            feedback.completion_id is not None
            and self._completion_ids.get(feedback.completion_id) != entry.id
        ):
            raise NotFound(
                f"No completion '{feedback.completion_id}' in conversation '{entry.id}'",
                param="completion_id",
            )
        entry.feedback.append(feedback)

    async def export(self, where: ConversationFilter | None = None) -> AsyncIterator[Conversation]:
        # keys only up front; each conversation is copied when its turn comes (and skipped if deleted)
        keys = sorted(e.key for e in self._entries.values() if e.matches(where))
        for _, conversation_id in keys:
            entry = self._entries.get(conversation_id)
            if entry is not None:
                yield entry.conversation(details=False)

    async def delete_before(self, cutoff: datetime) -> int:
        old = [e.id for e in self._entries.values() if e.updated_at < cutoff]
        for conversation_id in old:
            await self.delete(conversation_id)
        return len(old)


def _logged(record: CompletionRecord) -> LoggedCompletion:
    return LoggedCompletion(
        id=record.id,
        created_at=record.created_at,
        model=record.model,
        message_count=len(record.messages),
        responses=record.responses,
        finish_reasons=record.finish_reasons,
        parameters=dict(record.parameters),
        usage=record.usage,
        latency_ms=record.latency_ms,
        ttft_ms=record.ttft_ms,
        retrieved=record.retrieved,
        status=record.status,
        error=record.error,
        api_key_id=record.api_key_id,
        user=record.user,
    )


def _encode_cursor(key: tuple[datetime, str]) -> str:
    updated_at, conversation_id = key
    raw = json.dumps([updated_at.astimezone(UTC).isoformat(), conversation_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, conversation_id = json.loads(raw)
        updated_at = datetime.fromisoformat(when)
        if updated_at.tzinfo is None:
            raise ValueError("a cursor's time has a zone")
        return updated_at, str(conversation_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("not a cursor this server handed out", param="cursor") from None
