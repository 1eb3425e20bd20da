"""Conversation logging and review: which conversation a request continues, handing finished completions
to the durable log, and the review / export use cases over the ConversationStore."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from mindfu_core.domain.chat import ChatRequest, Message, Role
from mindfu_core.domain.conversations import (
    MAX_PAGE,
    CompletionRecord,
    CompletionStatus,
    Conversation,
    ConversationFilter,
    ConversationPage,
    Feedback,
    chain_hashes,
    check_filter,
)
from mindfu_core.domain.examples import finetuning_example
from mindfu_core.domain.principals import DEFAULT_TENANT
from mindfu_core.errors import InvalidRequest, MindFuError, NotFound
from mindfu_core.ports.conversation_store import CompletionLog, ConversationStore

log = logging.getLogger(__name__)

#: Ids a client may choose for a conversation (the header or the extension field).
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
RATING_RANGE = (-1, 5)
MAX_COMMENT_CHARS = 10_000


def new_conversation_id() -> str:
    return f"conv_{uuid.uuid4().hex}"


def check_conversation_id(value: str, param: str = "conversation_id") -> str:
    if not CONVERSATION_ID.match(value):
        raise InvalidRequest(
            "a conversation id is 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter "
            "or digit",
            param=param,
        )
    return value


def request_parameters(request: ChatRequest) -> dict[str, Any]:
    """What the log keeps of a request besides its messages: sampling, n, tools and output constraints."""
    parameters: dict[str, Any] = {k: v for k, v in asdict(request.sampling).items() if v not in (None, ())}
    parameters["n"] = request.n
    if request.tools:
        parameters["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters),
                },
            }
            for tool in request.tools
        ]
        parameters["tool_choice"] = {"mode": request.tool_choice.mode.value, "name": request.tool_choice.name}
    if request.response_format.type.value != "text":
        parameters["response_format"] = request.response_format.type.value
    return parameters


async def conversation_holding(store: ConversationStore, completion_id: str) -> Conversation | None:
    """The stored conversation that holds the logged completion ``completion_id``, if any."""
    conversation_id = await store.find_completion(completion_id)
    conversation = await store.get(conversation_id) if conversation_id else None
    if conversation is None or not any(c.id == completion_id for c in conversation.completions):
        return None
    return conversation


class ConversationRecorder:
    """Names the conversation each chat request belongs to, and hands finished completions to the log.

    A request continues a conversation when it names one, or when its history up to its last assistant
    message is a logged conversation's whole history: the recorder remembers recent heads itself, and asks
    the store (for at most ``lookup_timeout`` seconds, so a slow database never slows chat) otherwise.
    """

    def __init__(
        self,
        log: CompletionLog,
        store: ConversationStore | None = None,
        *,
        lookup_timeout: float = 0.05,
        cache_size: int = 100_000,
        recent_size: int = 1_000,
    ) -> None:
        self._log = log
        self._store = store
        self._lookup_timeout = lookup_timeout
        self._cache_size = cache_size
        # (tenant, head hash) -> conversation id
        self._heads: OrderedDict[tuple[str, str], str] = OrderedDict()
        # completion id -> (tenant, conversation id, transcript): a continuation asks for the latest first
        self._recent: OrderedDict[str, tuple[str, str, tuple[Message, ...]]] = OrderedDict()
        self._recent_size = recent_size
        self._pending: set[asyncio.Task[None]] = set()

    async def conversation_for(
        self, messages: Sequence[Message], explicit: str | None = None, *, tenant: str = DEFAULT_TENANT
    ) -> str:
        """The conversation a request of ``tenant`` continues: the one it names (a record naming another
        tenant's is kept apart by the store), else the one of its own whose history it extends, else a new
        one."""
        if explicit:
            return check_conversation_id(explicit)
        last_reply = next(
            (i for i in range(len(messages) - 1, -1, -1) if messages[i].role is Role.ASSISTANT), None
        )
        if last_reply is None:
            return new_conversation_id()
        head = (tenant, chain_hashes(messages[: last_reply + 1])[-1])
        known = self._heads.get(head)
        if known is not None:
            self._heads.move_to_end(head)
            return known
        if self._store is not None:
            try:
                found = await asyncio.wait_for(
                    self._store.find_by_head(head[1], tenant), self._lookup_timeout
                )
            except (TimeoutError, MindFuError) as error:
                log.debug("conversation lookup skipped: %s", error)
                found = None
            if found is not None:
                return found
        return new_conversation_id()

    async def continuation(
        self, completion_id: str, *, tenant: str = DEFAULT_TENANT
    ) -> tuple[str, tuple[Message, ...]]:
        """The conversation and transcript (request and first reply) of a logged completion of ``tenant``,
        to continue after it; ``NotFound`` when neither recent memory nor the store holds one."""
        recent = self._recent.get(completion_id)
        if recent is not None and recent[0] == tenant:
            return recent[1], recent[2]
        found = None
        if recent is None and self._store is not None:
            found = await self._stored_continuation(completion_id, tenant)
        if found is None:
            raise NotFound(
                f"No stored response with id {completion_id!r} (it was not logged, or was deleted).",
                param="previous_response_id",
                code="response_not_found",
            )
        return found

    async def _stored_continuation(
        self, completion_id: str, tenant: str
    ) -> tuple[str, tuple[Message, ...]] | None:
        assert self._store is not None
        conversation = await conversation_holding(self._store, completion_id)
        if conversation is None or conversation.summary.tenant != tenant:
            return None
        completion = next(c for c in conversation.completions if c.id == completion_id)
        history = conversation.messages[: completion.message_count]
        if completion.status is CompletionStatus.OK:
            history += completion.responses[:1]
        return conversation.id, history

    def _remember(self, record: CompletionRecord) -> None:
        transcript = record.transcript
        if not transcript:
            return
        self._recent[record.id] = (record.tenant, record.conversation_id, transcript)
        while len(self._recent) > self._recent_size:
            self._recent.popitem(last=False)
        self._heads[(record.tenant, chain_hashes(transcript)[-1])] = record.conversation_id
        while len(self._heads) > self._cache_size:
            self._heads.popitem(last=False)

    async def record(self, record: CompletionRecord) -> None:
        """Keep ``record`` durably before returning (the client is answered after this).

        The hand-off runs in its own task: if the caller is cancelled meanwhile, the record is still kept.
        A failing log is reported, never raised: logging must not fail a chat.
        """
        self._remember(record)
        task = self._spawn(record)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception:  # already reported by the task's callback
            pass

    def record_later(self, record: CompletionRecord) -> None:
        """Hand ``record`` over in the background (for errors and cancellations: nobody waits)."""
        self._remember(record)
        self._spawn(record)

    def _spawn(self, record: CompletionRecord) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._log.submit(record))
        self._pending.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("a completion could not be logged: %s", error, exc_info=error)

    async def drain(self) -> None:
        """Wait for every hand-off in progress (at shutdown, before the log closes)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def _owns(tenant: str | None, conversation: Conversation) -> bool:
    return tenant is None or conversation.summary.tenant == tenant


class ConversationService:
    """Review of the logged conversations: list, read, delete, rate, export and retention."""

    def __init__(
        self,
        store: ConversationStore,
        *,
        retention_days: int | None = None,
        log: CompletionLog | None = None,
        settle_s: float = 2.0,
    ) -> None:
        self._store = store
        self.retention_days = retention_days
        # the durable queue in front of the store: a completion just answered may still be in it
        self._log = log
        self._settle_s = settle_s

    async def list(
        self, where: ConversationFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", param="limit")
        check_filter(where)
        await self._settle()
        return await self._store.list(where, limit=limit, cursor=cursor)

    async def _settle(self) -> None:
        """Reads see every completion answered before them: what the durable log still holds is given up to
        ``settle_s`` seconds to reach the store (nothing to wait for when it is empty)."""
        if self._log is not None:
            await self._log.flush(self._settle_s)

    async def get(self, conversation_id: str, *, tenant: str | None = None) -> Conversation:
        """The conversation; ``NotFound`` when there is none, or it is not ``tenant``'s (``None``: any)."""
        await self._settle()
        conversation = await self._store.get(conversation_id)
        if conversation is None or not _owns(tenant, conversation):
            raise NotFound(f"No conversation with id '{conversation_id}'", param="conversation_id")
        return conversation

    async def of_completion(self, completion_id: str, *, tenant: str | None = None) -> Conversation:
        """The conversation that holds the logged completion ``completion_id``.

        A completion answered a moment ago can still be on its way from the durable log to the store: the
        log is given up to ``settle_s`` seconds to deliver before the completion is reported missing.
        """
        conversation = await conversation_holding(self._store, completion_id)
        if conversation is None and self._log is not None:
            await self._log.flush(self._settle_s)
            conversation = await conversation_holding(self._store, completion_id)
        if conversation is None or not _owns(tenant, conversation):
            raise NotFound(
                f"No logged completion with id '{completion_id}' (it was not logged, or was deleted)",
                param="completion_id",
            )
        return conversation

    async def delete(self, conversation_id: str, *, tenant: str | None = None) -> None:
        if tenant is not None:
            await self.get(conversation_id, tenant=tenant)
        await self._settle()
        if not await self._store.delete(conversation_id):
            raise NotFound(f"No conversation with id '{conversation_id}'", param="conversation_id")

    async def add_feedback(
        self,
        conversation_id: str,
        *,
        rating: int,
        comment: str | None = None,
        completion_id: str | None = None,
        tenant: str | None = None,
    ) -> Feedback:
        low, high = RATING_RANGE
        if isinstance(rating, bool) or not low <= rating <= high:
            raise InvalidRequest(
                f"rating must be an integer from {low} to {high} (-1/1 thumbs or a 1..5 scale)",
                param="rating",
            )
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise InvalidRequest(f"comment is longer than {MAX_COMMENT_CHARS} characters", param="comment")
        feedback = Feedback(
            id=f"fb_{uuid.uuid4().hex}",
            conversation_id=conversation_id,
            rating=rating,
            comment=comment,
            completion_id=completion_id,
            created_at=datetime.now(UTC),
        )
        if tenant is not None:
            await self.get(conversation_id, tenant=tenant)
        await self._settle()
        await self._store.add_feedback(feedback)
        return feedback

    async def export(self, where: ConversationFilter | None = None) -> AsyncIterator[Conversation]:
        check_filter(where)
        await self._settle()
        async for conversation in self._store.export(where):
            yield conversation

    async def export_examples(self, where: ConversationFilter | None = None) -> AsyncIterator[dict[str, Any]]:
        """Fine-tuning examples, one per conversation that has at least one assistant message."""
        check_filter(where)
        await self._settle()
        async for conversation in self._store.export(where):
            if any(m.role is Role.ASSISTANT for m in conversation.messages):
                yield finetuning_example(conversation)

    async def apply_retention(self, now: datetime | None = None) -> int:
        """Delete conversations older than the retention period (none without one); returns how many."""
        if self.retention_days is None:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        return await self._store.delete_before(cutoff)
