"""The ConversationStore port (where logged conversations live) and the CompletionLog port (how they get
there without slowing chat)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from mindfu_core.domain.conversations import (
    CompletionRecord,
    Conversation,
    ConversationFilter,
    ConversationPage,
    Feedback,
)


@runtime_checkable
class ConversationStore(Protocol):
    """Conversations, their messages, completions and feedback.

    ``record`` is idempotent on the completion id: writing a record twice (a replayed queue) changes
    nothing. A record whose messages extend its conversation's stored messages appends the new ones; one
    whose messages diverge (an edited or regenerated turn) replaces the stored tail from the first
    difference (the replaced replies stay in their completions).
    """

    async def record(self, records: Sequence[CompletionRecord]) -> int:
        """Write ``records`` in one transaction, in order; returns how many were new.

        A record naming a conversation of another tenant than its own is kept in that tenant's
        ``foreign_branch`` instead: nothing is ever written to another tenant's conversation.

        Raises ``UpstreamUnavailable`` when the database cannot be reached (nothing is written), and another
        ``MindFuError`` when it rejects the data itself.
        """
        ...

    async def find_by_head(self, head_hash: str, tenant: str) -> str | None:
        """The conversation of ``tenant`` whose stored messages end with this chain hash."""
        ...

    async def find_completion(self, completion_id: str) -> str | None:
        """The conversation holding the completion logged under ``completion_id``."""
        ...

    async def get(self, conversation_id: str) -> Conversation | None: ...

    async def list(
        self, where: ConversationFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        """Most recently updated first; ``InvalidRequest`` for a cursor this store did not hand out."""
        ...

    async def delete(self, conversation_id: str) -> bool:
        """Remove the conversation with its messages, completions and feedback; false if there was none."""
        ...

    async def add_feedback(self, feedback: Feedback) -> None:
        """``NotFound`` if the conversation (or the completion named) is not stored."""
        ...

    def export(self, where: ConversationFilter | None = None) -> AsyncIterator[Conversation]:
        """Every matching conversation with its messages, oldest first, read in pages (constant memory)."""
        ...

    async def delete_before(self, cutoff: datetime) -> int:
        """Remove conversations last updated before ``cutoff`` (retention); returns how many."""
        ...


@runtime_checkable
class CompletionLog(Protocol):
    """Where the chat path hands finished completions: durable once ``submit`` returns."""

    async def submit(self, record: CompletionRecord) -> None:
        """Keep ``record`` safely (it reaches the ConversationStore later); must not wait for the store."""
        ...

    async def flush(self, within: float) -> bool:
        """Wait until everything submitted so far is in the store (true) or ``within`` seconds pass."""
        ...
