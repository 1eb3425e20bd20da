"""The conversation merge rule (``mindfu_core.domain.conversation_merge``), the one both stores apply: next
turn, retry, edit, and the fast path that needs only the stored head."""

from __future__ import annotations

import pytest

from mindfu_core.domain.chat import Message, Role
from mindfu_core.domain.conversation_merge import MergePlan, ReplyStats, conversation_title, plan_merge
from mindfu_core.domain.conversations import chain_hashes


def turns(*texts: str) -> list[Message]:
    roles = (Role.USER, Role.ASSISTANT)
    return [Message(role=roles[i % 2], content=text) for i, text in enumerate(texts)]


STORED = chain_hashes(turns("hi", "hello", "how are you?", "fine"))


def against_stored(hashes: list[str], *, with_hashes: bool = True) -> MergePlan | None:
    return plan_merge(
        hashes, stored_count=len(STORED), head_hash=STORED[-1], stored_hashes=STORED if with_hashes else None
    )


def shape(plan: MergePlan | None) -> tuple[int, list[int], int, bool]:
    """(stored messages kept, transcript positions written, messages after, truncates)."""
    assert plan is not None
    return plan.keep, list(plan.writes), plan.count, plan.truncates


def test_a_new_conversation_writes_everything() -> None:
    hashes = chain_hashes(turns("hi", "hello"))
    assert shape(plan_merge(hashes, stored_count=0, head_hash=None)) == (0, [0, 1], 2, False)


def test_the_next_turn_appends_from_the_head_alone() -> None:
    hashes = chain_hashes(turns("hi", "hello", "how are you?", "fine", "and you?", "great"))
    assert shape(against_stored(hashes, with_hashes=False)) == (4, [4, 5], 6, False)  # from the head alone


def test_a_retry_of_an_earlier_turn_changes_nothing() -> None:
    hashes = chain_hashes(turns("hi", "hello"))
    assert against_stored(hashes, with_hashes=False) is None  # it does not extend the head: ask for hashes
    assert shape(against_stored(hashes)) == (4, [], 4, False)


def test_an_edited_turn_replaces_the_stored_tail_from_where_they_part() -> None:
    hashes = chain_hashes(turns("hi", "hello", "what is 2+2?", "4"))
    assert against_stored(hashes, with_hashes=False) is None
    assert shape(against_stored(hashes)) == (2, [2, 3], 4, True)
    assert shape(against_stored(chain_hashes(turns("hello?")))) == (0, [0], 1, True)


def test_stored_hashes_must_be_all_of_them() -> None:
    with pytest.raises(ValueError, match="3 stored hashes for a conversation of 4"):
        plan_merge(chain_hashes(turns("x")), stored_count=4, head_hash=STORED[-1], stored_hashes=STORED[:3])


def test_title_and_reply_statistics() -> None:
    question = "  Why\nis the sky " + "blue " * 30
    messages = [Message(role=Role.SYSTEM, content="be brief"), *turns(question, "ok")]
    title = conversation_title(messages)
    assert title.startswith("Why is the sky blue") and len(title) == 80
    assert conversation_title(turns()) == ""
    stats = ReplyStats.of([*turns("a", "four", "b", "sixsix", "c", "")])
    assert stats == ReplyStats(turns=3, min_chars=0, max_chars=6)
    assert ReplyStats.of([]) == ReplyStats(turns=0, min_chars=None, max_chars=None)
