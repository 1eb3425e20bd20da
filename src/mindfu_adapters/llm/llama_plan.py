"""What a batched llama.cpp step holds: the requests (jobs) on their slots (KV-cache sequences), and the plan
of one step: a row for every decoding sequence, then chunks of the prompts still being computed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mindfu_adapters.llm.prompt_cache import shared_prefix
from mindfu_adapters.llm.shaping import ToolMode
from mindfu_adapters.llm.text_stream import StopStream
from mindfu_core.domain.chat import FinishReason, TokenLogprob, ToolSpec


@dataclass(frozen=True, slots=True)
class Text:
    """Text of choice ``index``, with the log-probabilities of its tokens (when asked)."""

    index: int
    text: str
    logprobs: tuple[TokenLogprob, ...]


@dataclass(frozen=True, slots=True)
class End:
    """Choice ``index`` ended: why, the tokens it sampled, and the stop string it matched."""

    index: int
    reason: FinishReason
    produced: int
    matched: str | None


@dataclass(frozen=True, slots=True)
class Cached:
    """The prompt tokens reused from a cache (the slot's, or host memory) instead of computed."""

    tokens: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The step failed: the request ends with this error."""

    error: Exception


@dataclass(frozen=True, slots=True)
class Closed:
    """The job left the scheduler: nothing follows."""


#: What the scheduler thread tells a request's stream, in order
Event = Text | End | Cached | Failed | Closed
Emit = Callable[[Event], None]


@dataclass(slots=True)
class Prepared:
    """A request made ready for the engine: its prompt tokens and how to sample and shape its choices."""

    prompt_tokens: list[int]
    kwargs: dict[str, Any]
    n: int
    mode: ToolMode
    tools: Sequence[ToolSpec]
    echo: str = ""
    seed: int | None = None
    adapter: str | None = None  # a LoRA adapter to generate with


@dataclass(slots=True, eq=False)
class SeqSlot:
    """One sequence of the shared KV cache, and the tokens its cells hold (computed under ``adapter``)."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    adapter: str | None = None

    def cached_prefix(self, tokens: Sequence[int], adapter: str | None) -> int:
        """How many leading ``tokens`` this sequence already holds (none under another adapter)."""
        if adapter != self.adapter:
            return 0
        return shared_prefix(self.tokens, tokens[: len(self.tokens)])

    def affinity(self, tokens: Sequence[int], adapter: str | None) -> int:
        """How much a request with ``tokens`` gains from this slot: the prefix it reuses, when that is at
        least half of what the slot holds (a few shared tokens, such as a chat template's opening, are not
        worth another conversation's cache; the pool then picks the least recently used slot)."""
        shared = self.cached_prefix(tokens, adapter)
        return shared if shared * 2 >= len(self.tokens) else 0


@dataclass(slots=True, eq=False)
class Job:
    """One request on its slot: the choice being generated and where it stands."""

    slot: SeqSlot
    prepared: Prepared
    cancel: threading.Event
    emit: Emit
    index: int = -1  # the choice being generated (-1: not started)
    todo: list[int] = field(default_factory=list)  # tokens to feed: the prompt's rest, or the last sample
    decoding: bool = False  # the choice's prompt is computed: ``todo`` is the token it sampled last
    sampler: Any = None
    text: StopStream | None = None
    sampled: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)

    @property
    def adapter(self) -> str | None:
        return self.prepared.adapter


@dataclass(frozen=True, slots=True)
class Feed:
    """What one step feeds of one job: ``count`` tokens from the start of its ``todo``; ``wants_logits``
    when the last of them completes what the job must compute before it samples."""

    job: Job
    count: int
    wants_logits: bool


def plan_step(jobs: Sequence[Job], budget: int) -> list[Feed]:
    """One step's batch: a row for every decoding job, then prompt chunks of the others in arrival order
    while ``budget`` rows last (a prompt longer than what is left continues in the next step)."""
    plan = [Feed(job, 1, True) for job in jobs if job.decoding and job.todo]
    left = budget - len(plan)
    for job in jobs:
        if left <= 0:
            break
        if job.decoding or not job.todo:
            continue
        count = min(left, len(job.todo))
        plan.append(Feed(job, count, count == len(job.todo)))
        left -= count
    return plan


__all__ = [
    "Cached",
    "Closed",
    "Emit",
    "End",
    "Event",
    "Failed",
    "Feed",
    "Job",
    "Prepared",
    "SeqSlot",
    "Text",
    "plan_step",
]
