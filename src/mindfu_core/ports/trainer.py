"""The Trainer port: fine-tune a base model on chat examples into an adapter, evaluate, merge.

Training is long, blocking work that owns a device: implementations run inside a job's worker process,
report through ``TrainingCallbacks`` and stop when ``should_stop`` says so (within a step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mindfu_core.domain.training import ChatExample, Hyperparameters, Progress, TrainingOutcome


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingRequest:
    """What to train: the base model (a local model folder), the data, the settings, where to write."""

    base_model: str
    output_dir: str  # checkpoints under it; the adapter in <output_dir>/adapter
    train: Sequence[ChatExample]
    validation: Sequence[ChatExample] = ()
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    resume: bool = True  # continue from the newest checkpoint in output_dir when there is one
    evaluate_base: bool = True  # also measure the base model's validation loss (for the evaluation gate)


class TrainingCallbacks(Protocol):
    """How a trainer reports and learns it should stop."""

    def on_progress(self, progress: Progress) -> None: ...

    def on_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def should_stop(self) -> bool: ...


class Trainer(Protocol):
    """Parameter-efficient fine-tuning of causal language models."""

    def train(self, request: TrainingRequest, callbacks: TrainingCallbacks) -> TrainingOutcome:
        """Train until done or told to stop (the outcome then covers the steps taken); raises
        ``InvalidRequest`` for a base model it cannot load and ``EngineFailure`` when training breaks."""
        ...

    def evaluate(
        self,
        base_model: str,
        adapter_dir: str | None,
        examples: Sequence[ChatExample],
        *,
        max_seq_length: int,
    ) -> float:
        """Mean token loss on ``examples`` (perplexity is its exponential), with or without the adapter."""
        ...

    def merge(self, base_model: str, adapter_dir: str, output_dir: str, *, dtype: str = "auto") -> str:
        """The base model with the adapter folded in, saved as SafeTensors in ``output_dir``; returns it.

        ``dtype`` "auto" keeps the weights' own precision (a bf16 base gives a bf16 model); "bfloat16",
        "float16" or "float32" cast every floating weight."""
        ...
