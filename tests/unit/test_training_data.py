"""Dataset preparation: quality filters, exact and near-exact duplicates, a split that is deterministic and
stable when data is appended, statistics, and the too-few-examples failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from mindfu_core.domain.chat import Message, Role, ToolCall
from mindfu_core.domain.conversations import CompletionStatus, Conversation, ConversationSummary
from mindfu_core.domain.training import ChatExample, QualityPolicy, SplitPolicy
from mindfu_core.errors import InvalidRequest
from mindfu_core.services.training_data import (
    DatasetBuilder,
    near_key,
    prepare_examples,
    prepare_from_conversations,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def example(question: str, answer: str, *, turns: int = 1) -> ChatExample:
    messages: list[Message] = []
    for turn in range(turns):
        messages.append(Message(role=Role.USER, content=f"{question} ({turn})"))
        messages.append(Message(role=Role.ASSISTANT, content=answer))
    return ChatExample(messages=tuple(messages))


def conversation(
    number: int,
    *,
    status: CompletionStatus = CompletionStatus.OK,
    rating: int | None = None,
    messages: tuple[Message, ...] | None = None,
) -> Conversation:
    summary = ConversationSummary(
        id=f"conv_{number}",
        created_at=T0,
        updated_at=T0,
        model="m",
        message_count=2,
        completion_count=1,
        last_status=status,
        rating=rating,
    )
    default = (
        Message(role=Role.USER, content=f"Question number {number}?"),
        Message(role=Role.ASSISTANT, content=f"The answer to question {number} is {number * 7}."),
    )
    return Conversation(summary=summary, messages=messages or default)


async def stream(items: list[Conversation]) -> AsyncIterator[Conversation]:
    for item in items:
        yield item


def test_quality_filters_drop_with_their_reasons() -> None:
    policy = QualityPolicy(min_turns=2, min_response_chars=5, max_response_chars=40, min_examples=1)
    examples = [
        example("q1", "a fine answer here", turns=2),
        example("q2", "a fine answer here", turns=1),  # too few turns
        example("q3", "no", turns=2),  # too short
        example("q4", "x" * 41, turns=2),  # too long
        ChatExample(messages=(Message(role=Role.USER, content="only a question"),)),
    ]
    prepared = prepare_examples(examples, policy, SplitPolicy(validation_fraction=0.0))
    assert prepared.stats.kept == 1 and prepared.stats.seen == 5
    assert prepared.stats.dropped == {
        "no_assistant_reply": 1,
        "response_too_long": 1,
        "response_too_short": 1,
        "too_few_turns": 1,
    }


def test_tool_calls_count_as_a_reply_and_are_kept() -> None:
    call = ToolCall(id="c1", name="weather", arguments='{"city": "Paris"}')
    tools = ({"type": "function", "function": {"name": "weather"}},)
    messages = (
        Message(role=Role.USER, content="Weather in Paris?"),
        Message(role=Role.ASSISTANT, tool_calls=(call,)),
        Message(role=Role.TOOL, content="18C", tool_call_id="c1"),
        Message(role=Role.ASSISTANT, content="It is 18C in Paris."),
    )
    prepared = prepare_examples(
        [ChatExample(messages=messages, tools=tools), example("q", "other answer")],
        QualityPolicy(),
        SplitPolicy(validation_fraction=0.0),
    )
    kept = [e for e in prepared.train if e.tools]
    assert kept[0].messages[1].tool_calls == (call,) and kept[0].tools == tools


def test_exact_and_near_duplicates_are_removed() -> None:
    a = example("What is the capital of France?", "Paris is the capital.")
    same = example("What is the capital of France?", "Paris is the capital.")
    near = example("what is the capital of france", "Paris is the capital!!")
    other = example("What is the capital of Spain?", "Madrid is the capital.")
    prepared = prepare_examples([a, same, near, other], QualityPolicy(), SplitPolicy(validation_fraction=0.0))
    assert prepared.stats.kept == 2
    assert prepared.stats.dropped == {"duplicate": 1, "near_duplicate": 1}
    assert near_key(a) == near_key(near)
    kept = prepare_examples(
        [a, same], QualityPolicy(deduplicate=False, min_examples=1), SplitPolicy(validation_fraction=0.0)
    )
    assert kept.stats.kept == 2


def test_the_split_is_about_90_10_deterministic_and_stable_when_appending() -> None:
    examples = [example(f"question {i}", f"answer {i} is here") for i in range(400)]
    first = prepare_examples(examples)
    again = prepare_examples(examples)
    assert first.validation == again.validation and first.train == again.train
    assert 0.05 < len(first.validation) / 400 < 0.15
    more = prepare_examples(
        examples + [example(f"question {i}", f"answer {i} is here") for i in range(400, 600)]
    )
    assert set(map(near_key, first.validation)) <= set(map(near_key, more.validation))
    assert set(map(near_key, first.train)) <= set(map(near_key, more.train))
    reseeded = prepare_examples(examples, split=SplitPolicy(seed=7))
    assert reseeded.validation != first.validation
    assert first.stats.train + first.stats.validation == 400 and first.stats.characters > 0


def test_a_tiny_set_still_gets_one_validation_example() -> None:
    prepared = prepare_examples([example("a", "first answer"), example("b", "second answer")])
    assert (len(prepared.train), len(prepared.validation)) == (1, 1)


def test_too_few_examples_fail_with_the_counts() -> None:
    with pytest.raises(InvalidRequest, match=r"only 1 of 3 examples .* response_too_short 2") as caught:
        prepare_examples([example("a", "good answer"), example("b", "x"), example("c", "y")])
    assert caught.value.code == "too_few_examples"


async def test_conversations_are_filtered_by_status_and_rating_and_trimmed() -> None:
    failed_tail = (
        Message(role=Role.USER, content="Question number 9?"),
        Message(role=Role.ASSISTANT, content="The answer to question 9 is 63."),
        Message(role=Role.USER, content="And then?"),  # its completion failed: nothing to learn from it
    )
    items = [
        conversation(1),
        conversation(2, rating=1),
        conversation(3, rating=-1),
        conversation(4, status=CompletionStatus.ERROR),
        conversation(5, status=CompletionStatus.CANCELLED),
        conversation(9, messages=failed_tail),
    ]
    prepared = await prepare_from_conversations(
        stream(items), QualityPolicy(), SplitPolicy(validation_fraction=0.0)
    )
    assert prepared.stats.dropped == {"low_rating": 1, "status": 2}
    assert prepared.stats.kept == 3
    trimmed = [e for e in prepared.train if "63" in (e.messages[-1].content or "")]
    assert trimmed[0].messages[-1].role is Role.ASSISTANT and len(trimmed[0].messages) == 2
    rated = await prepare_from_conversations(
        stream(items), QualityPolicy(rated_only=True, min_examples=1), SplitPolicy(validation_fraction=0.0)
    )
    assert rated.stats.kept == 1 and rated.stats.dropped["unrated"] == 2  # 1 and 9; 4 and 5 fail on status


def test_the_builder_counts_every_example_it_sees() -> None:
    builder = DatasetBuilder(QualityPolicy(min_examples=0), SplitPolicy(validation_fraction=0.0))
    for index in range(5):
        builder.add(example(f"q{index}", "the same answer"))
    builder.add(example("q0", "the same answer"))
    prepared = builder.build()
    assert (
        prepared.stats.seen == 6 and prepared.stats.kept == 5 and prepared.stats.dropped == {"duplicate": 1}
    )
