"""How a logged completion changes its conversation. Every conversation store applies these rules.

Each stored message has a chain hash (``chain_hashes``). Equal hashes at a position mean equal histories up to
that position. A completion's transcript is its request's messages followed by its reply. Compared with what
is stored, the transcript does one of three things:

- it extends the stored history (the usual next turn);
- it repeats a prefix of it (a retry or a regenerate), and the stored messages stay as they are;
- it departs from it at some position (an edited turn), and the stored messages from there on are replaced.

``plan_merge`` says which of the three it is. A store answers the common case, the next turn, from the
conversation's message count and head hash alone. It reads every stored hash only when the transcript
departs from the head.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from mindfu_core.domain.chat import Message, Role

TITLE_CHARS = 80


@dataclass(frozen=True, slots=True, kw_only=True)
class MergePlan:
    """What a store does with one transcript of ``length`` messages against ``stored`` stored ones: keep the
    first ``keep`` stored messages, then write the transcript's messages from position ``write_from`` on."""

    stored: int
    length: int
    keep: int
    write_from: int

    @property
    def truncates(self) -> bool:
        """Stored messages are removed, from position ``keep`` on."""
        return self.keep < self.stored

    @property
    def writes(self) -> range:
        """The transcript positions written, each at its own position in the conversation."""
        return range(self.write_from, self.length)

    @property
    def count(self) -> int:
        """The conversation's messages after the merge."""
        return max(self.keep, self.length)


def plan_merge(
    hashes: Sequence[str],
    *,
    stored_count: int,
    head_hash: str | None,
    stored_hashes: Sequence[str] | None = None,
) -> MergePlan | None:
    """The plan for a transcript with chain hashes ``hashes``, against a conversation of ``stored_count``
    messages whose last has ``head_hash``.

    Returns ``None`` when the transcript does not extend the stored head and ``stored_hashes`` (every stored
    message's hash, in order) was not given: the store reads those hashes and asks again.
    """
    total = len(hashes)
    plan = partial(MergePlan, stored=stored_count, length=total)
    if stored_count == 0 or (total >= stored_count and hashes[stored_count - 1] == head_hash):
        return plan(keep=stored_count, write_from=stored_count)
    if stored_hashes is None:
        return None
    if len(stored_hashes) != stored_count:
        raise ValueError(f"{len(stored_hashes)} stored hashes for a conversation of {stored_count} messages")
    common = 0
    for stored, new in zip(stored_hashes, hashes, strict=False):
        if stored != new:
            break
        common += 1
    if common == total:  # a prefix of what is stored: nothing changes
        return plan(keep=stored_count, write_from=total)
    return plan(keep=common, write_from=common)


def conversation_title(transcript: Iterable[Message]) -> str:
    """A conversation's title: its first user message on one line, cut to ``TITLE_CHARS`` characters."""
    for message in transcript:
        if message.role is Role.USER and message.content:
            return " ".join(message.content.split())[:TITLE_CHARS]
    return ""


@dataclass(frozen=True, slots=True)
class ReplyStats:
    """The assistant replies' count and shortest and longest lengths (what the training filters read)."""

    turns: int = 0
    min_chars: int | None = None
    max_chars: int | None = None

    def add(self, chars: int) -> ReplyStats:
        low, high = self.min_chars, self.max_chars
        return ReplyStats(
            self.turns + 1,
            chars if low is None else min(low, chars),
            chars if high is None else max(high, chars),
        )

    @classmethod
    def of(cls, messages: Iterable[Message]) -> ReplyStats:
        stats = cls()
        for message in messages:
            if message.role is Role.ASSISTANT:
                stats = stats.add(len(message.content or ""))
        return stats
