"""The TrainingRunner port: runs one job's training away from the server (a worker process), with its
dataset kept beside it so an interrupted job resumes on the same data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mindfu_core.domain.training import ChatExample, Checkpoint, Progress, TrainingJob, TrainingOutcome


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerUpdate:
    """Something the worker reported: progress, metrics, a message, or its tracking run id."""

    progress: Progress | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    step: int = 0
    message: str | None = None
    level: str = "info"
    tracking_run_id: str | None = None  # the experiment tracker's run, once it has one


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """How a run ended: an outcome, or stopped on request (``cancelled``)."""

    outcome: TrainingOutcome | None = None
    cancelled: bool = False
    artifacts: Mapping[str, str] = field(default_factory=dict)


class TrainingRunner(Protocol):
    """Runs training jobs one process each; ``run`` raises ``EngineFailure`` when the worker fails."""

    def base_model_path(self, model: str) -> str:
        """The trainable weights of served model ``model``; ``NotFound`` when it cannot be fine-tuned."""
        ...

    def has_dataset(self, job_id: str) -> bool:
        """Whether the job's dataset is already stored (prepared before an interruption)."""
        ...

    def store_dataset(
        self, job_id: str, train: Sequence[ChatExample], validation: Sequence[ChatExample]
    ) -> None:
        """Keep the job's examples beside it (written atomically)."""
        ...

    async def run(self, job: TrainingJob, report: Callable[[RunnerUpdate], Awaitable[None]]) -> RunResult:
        """Train ``job`` (resuming from its newest checkpoint), reporting as it goes."""
        ...

    def cancel(self, job_id: str) -> None:
        """Ask the job's worker to stop after its current step (it saves a checkpoint first)."""
        ...

    def checkpoints(self, job_id: str) -> list[Checkpoint]:
        """The job's saved checkpoints, newest first."""
        ...
