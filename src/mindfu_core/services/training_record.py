"""What a fine-tuning job leaves in its record: events, its end (succeeded, failed, cancelled), and on success
the evaluation gate (the tuned model against the base) and the registration of the tuned model."""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from mindfu_core.domain.training import JobEvent, JobStatus, RegisterPolicy, TrainingJob
from mindfu_core.errors import MindFuError
from mindfu_core.ports.training_jobs import TrainingJobStore
from mindfu_core.ports.training_runner import RunResult


def utc_now() -> datetime:
    return datetime.now(UTC)


def perplexity(loss: float) -> float:
    """The exponential of a mean token loss (capped so a diverged run reads as huge, not as an error)."""
    return math.exp(min(loss, 50.0))


def fine_tuned_name(job: TrainingJob) -> str:
    """The served name of a job's model, in OpenAI's shape: ``ft:<base>:<suffix>:<job id>``."""
    return f"ft:{job.spec.base_model}:{job.spec.suffix or 'mindfu'}:{job.id}"


class JobRecord:
    """Writes a job's events and its end to the store."""

    def __init__(
        self, store: TrainingJobStore, publish: Callable[[TrainingJob], Awaitable[bool]] | None = None
    ) -> None:
        self._store = store
        self._publish = publish

    async def succeed(self, job: TrainingJob, result: RunResult) -> None:
        outcome = result.outcome
        assert outcome is not None
        job = replace(job, outcome=outcome, artifacts={**job.artifacts, **result.artifacts})
        for note in outcome.notes:
            await self.event(job, note, "warn")
        better = (
            outcome.eval_loss is not None
            and outcome.base_eval_loss is not None
            and outcome.eval_loss < outcome.base_eval_loss
        )
        policy = job.spec.register
        if policy is RegisterPolicy.ALWAYS or (policy is RegisterPolicy.IF_BETTER and better):
            job = replace(job, fine_tuned_model=fine_tuned_name(job))
        if outcome.eval_loss is not None and outcome.base_eval_loss is not None:
            tuned, base = outcome.eval_loss, outcome.base_eval_loss
            await self.event(
                job,
                f"Validation loss {tuned:.4f} (perplexity {perplexity(tuned):.2f}) against the base model's "
                f"{base:.4f} (perplexity {perplexity(base):.2f})",
                data={"eval_loss": tuned, "base_eval_loss": base},
            )
        if policy is RegisterPolicy.IF_BETTER and not better:
            await self.event(job, "Not registered: the tuned model does not beat the base model", "warn")
        if job.fine_tuned_model and self._publish is not None:
            try:
                if await self._publish(job):
                    await self.event(job, f"Serving the tuned model as {job.fine_tuned_model}")
            except MindFuError as error:
                await self.event(job, f"The tuned model could not be served: {error.message}", "error")
        await self.finish(job, JobStatus.SUCCEEDED)

    async def finish(self, job: TrainingJob, status: JobStatus, *, error: str | None = None) -> TrainingJob:
        job = replace(job, status=status, finished_at=utc_now(), error=error)
        await self._store.update(job)
        messages = {
            JobStatus.SUCCEEDED: "The job has successfully completed",
            JobStatus.CANCELLED: "The job was cancelled",
            JobStatus.FAILED: f"The job failed: {error}",
        }
        await self.event(
            job, messages.get(status, status.value), "error" if status is JobStatus.FAILED else "info"
        )
        return job

    async def event(
        self,
        job: TrainingJob,
        message: str,
        level: str = "info",
        *,
        data: dict[str, Any] | None = None,
        kind: str = "message",
    ) -> None:
        event = JobEvent(
            id=f"ftevent-{uuid.uuid4().hex[:24]}",
            job_id=job.id,
            created_at=utc_now(),
            level=level,
            message=message,
            data={"type": kind, **(data or {})},
        )
        await self._store.add_event(event)
