"""Dataset preparation: logged conversations (or an uploaded JSONL) -> quality filter -> duplicate removal
-> a deterministic train/validation split, with statistics of what was kept and dropped and why.

Formatting with the model's chat template happens in the trainer, which has the tokenizer; examples stay
in OpenAI's chat shape (tool calls and tools kept) until then.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass

from mindfu_core.domain.chat import Message, Role
from mindfu_core.domain.conversations import Conversation
from mindfu_core.domain.training import ChatExample, DatasetStats, QualityPolicy, SplitPolicy
from mindfu_core.errors import InvalidRequest

#: Drop reasons, as the statistics name them.
NO_REPLY = "no_assistant_reply"
STATUS = "status"
TOO_FEW_TURNS = "too_few_turns"
TOO_SHORT = "response_too_short"
TOO_LONG = "response_too_long"
LOW_RATING = "low_rating"
UNRATED = "unrated"
DUPLICATE = "duplicate"
NEAR_DUPLICATE = "near_duplicate"

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedDataset:
    """The examples to train and validate on, and how they were chosen."""

    train: tuple[ChatExample, ...]
    validation: tuple[ChatExample, ...]
    stats: DatasetStats


def _replies(messages: Iterable[Message]) -> list[Message]:
    return [m for m in messages if m.role is Role.ASSISTANT]


def _trim(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """Up to the last assistant message: what follows it has no answer to learn."""
    for end in range(len(messages), 0, -1):
        if messages[end - 1].role is Role.ASSISTANT:
            return messages[:end]
    return ()


def example_verdict(example: ChatExample, policy: QualityPolicy) -> str | None:
    """Why ``example`` fails the content rules of ``policy`` (``None``: it passes)."""
    replies = _replies(example.messages)
    if not replies:
        return NO_REPLY
    if len(replies) < policy.min_turns:
        return TOO_FEW_TURNS
    for reply in replies:
        size = len(reply.content or "") + sum(len(c.name) + len(c.arguments) for c in reply.tool_calls)
        if size < policy.min_response_chars:
            return TOO_SHORT
        if size > policy.max_response_chars:
            return TOO_LONG
    return None


def conversation_verdict(conversation: Conversation, policy: QualityPolicy) -> str | None:
    """Why a logged conversation is not used (``None``: it passes the status and rating rules)."""
    if conversation.summary.last_status not in policy.statuses:
        return STATUS
    rating = conversation.summary.rating
    if rating is None and policy.rated_only:
        return UNRATED
    if rating is not None and policy.min_rating is not None and rating < policy.min_rating:
        return LOW_RATING
    return None


def exact_key(example: ChatExample) -> str:
    """Equal for examples with the same messages and tools."""
    payload = [
        [m.role.value, m.content or "", [[c.name, c.arguments] for c in m.tool_calls]]
        for m in example.messages
    ]
    encoded = json.dumps([payload, [dict(t) for t in example.tools]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def near_key(example: ChatExample) -> str:
    """Equal for examples that differ only in case, punctuation and spacing."""
    parts = []
    for message in example.messages:
        text = " ".join([message.content or "", *(c.name + " " + c.arguments for c in message.tool_calls)])
        parts.append(message.role.value + ":" + _NOT_WORD.sub(" ", text.casefold()).strip())
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _side(key: str, policy: SplitPolicy) -> float:
    """A uniform number in [0, 1) from the example's key and the seed."""
    digest = hashlib.sha256(f"{policy.seed}:{key}".encode()).hexdigest()
    return int(digest[:12], 16) / float(1 << 48)


class DatasetBuilder:
    """Collects examples one by one (constant work each), then splits them."""

    def __init__(self, quality: QualityPolicy | None = None, split: SplitPolicy | None = None) -> None:
        self.quality = quality or QualityPolicy()
        self.split_policy = split or SplitPolicy()
        self._seen = 0
        self._dropped: Counter[str] = Counter()
        self._exact: set[str] = set()
        self._near: set[str] = set()
        self._kept: list[tuple[float, ChatExample]] = []

    def add_conversation(self, conversation: Conversation) -> None:
        reason = conversation_verdict(conversation, self.quality)
        if reason is not None:
            self._seen += 1
            self._dropped[reason] += 1
            return
        tools = tuple(conversation.tools)
        self.add(ChatExample(messages=_trim(conversation.messages), tools=tools))

    def add(self, example: ChatExample) -> None:
        self._seen += 1
        reason = example_verdict(example, self.quality)
        if reason is None and self.quality.deduplicate:
            exact, near = exact_key(example), near_key(example)
            if exact in self._exact:
                reason = DUPLICATE
            elif near in self._near:
                reason = NEAR_DUPLICATE
            self._exact.add(exact)
            self._near.add(near)
        if reason is not None:
            self._dropped[reason] += 1
            return
        self._kept.append((_side(near_key(example), self.split_policy), example))

    def build(self) -> PreparedDataset:
        """The split; ``InvalidRequest`` (with the counts) when too few examples are left."""
        kept = len(self._kept)
        if kept < self.quality.min_examples:
            dropped = (
                ", ".join(f"{reason} {count}" for reason, count in sorted(self._dropped.items())) or "none"
            )
            raise InvalidRequest(
                f"only {kept} of {self._seen} examples are left after filtering (at least "
                f"{self.quality.min_examples} are needed); dropped: {dropped}",
                code="too_few_examples",
            )
        fraction = self.split_policy.validation_fraction
        validation = [example for value, example in self._kept if value < fraction]
        train = [example for value, example in self._kept if value >= fraction]
        if fraction > 0 and not validation:  # tiny sets: the example closest to the cut validates
            _, lowest = min(self._kept, key=lambda pair: pair[0])
            validation = [lowest]
            train = [example for v, example in self._kept if example is not lowest]
        characters = sum(len(m.content or "") for _, e in self._kept for m in e.messages)
        stats = DatasetStats(
            seen=self._seen,
            kept=kept,
            dropped=dict(sorted(self._dropped.items())),
            train=len(train),
            validation=len(validation),
            characters=characters,
        )
        return PreparedDataset(train=tuple(train), validation=tuple(validation), stats=stats)


async def prepare_from_conversations(
    conversations: AsyncIterable[Conversation],
    quality: QualityPolicy | None = None,
    split: SplitPolicy | None = None,
) -> PreparedDataset:
    """Training data from logged conversations (read as a stream, e.g. ``ConversationService.export``)."""
    builder = DatasetBuilder(quality, split)
    async for conversation in conversations:
        builder.add_conversation(conversation)
    return builder.build()


def prepare_examples(
    examples: Iterable[ChatExample], quality: QualityPolicy | None = None, split: SplitPolicy | None = None
) -> PreparedDataset:
    """Training data from examples already in the chat format (an uploaded JSONL file)."""
    builder = DatasetBuilder(quality, split)
    for example in examples:
        builder.add(example)
    return builder.build()
