"""The fine-tuning use case: training files, jobs and their lifecycle.

A job is created queued with its dataset prepared and stored (too few examples fail it at once, with the
counts); one job runs at a time, in a worker process started by the ``TrainingRunner``; its progress,
metrics and messages become the job's record and events; cancel stops it within a step; a job found
running at start-up was interrupted by a restart and is queued again to resume from its checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from mindfu_core.domain.conversations import Conversation, ConversationFilter
from mindfu_core.domain.pages import Page, page_of
from mindfu_core.domain.training import (
    Checkpoint,
    DataSource,
    JobEvent,
    JobSpec,
    JobStatus,
    RegisterPolicy,
    TrainingFile,
    TrainingJob,
)
from mindfu_core.errors import InvalidRequest, MindFuError, NotFound
from mindfu_core.ports.blob_store import BlobStore
from mindfu_core.ports.training_jobs import TrainingJobStore
from mindfu_core.ports.training_runner import RunnerUpdate, RunResult, TrainingRunner
from mindfu_core.services.dataset import read_chat_jsonl
from mindfu_core.services.training_data import PreparedDataset, prepare_examples, prepare_from_conversations

log = logging.getLogger(__name__)
MAX_PAGE = 100
MAX_FILES_PAGE = 1000
ConversationSource = Callable[[ConversationFilter | None], AsyncIterable[Conversation]]


def _now() -> datetime:
    return datetime.now(UTC)


def perplexity(loss: float) -> float:
    """The exponential of a mean token loss (capped so a diverged run reads as huge, not as an error)."""
    return math.exp(min(loss, 50.0))


def fine_tuned_name(job: TrainingJob) -> str:
    """The served name of a job's model, in OpenAI's shape: ``ft:<base>:<suffix>:<job id>``."""
    return f"ft:{job.spec.base_model}:{job.spec.suffix or 'mindfu'}:{job.id}"


class TrainingService:
    """Fine-tuning for edges and library users; ``start`` begins the scheduler, ``aclose`` stops it."""

    def __init__(
        self,
        store: TrainingJobStore,
        runner: TrainingRunner,
        files: BlobStore,
        conversations: ConversationSource,
        *,
        max_file_bytes: int = 512 * 1024 * 1024,
        catch_up: Callable[[], Awaitable[object]] | None = None,
        publish: Callable[[TrainingJob], Awaitable[bool]] | None = None,
    ) -> None:
        """``catch_up`` lets the conversation log write what it holds before a dataset is read from it;
        ``publish`` serves a finished job's model under its ``fine_tuned_model`` name (true when it did)."""
        self._store = store
        self._runner = runner
        self._files = files
        self._conversations = conversations
        self._max_file_bytes = max_file_bytes
        self._catch_up = catch_up
        self._publish = publish
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: str | None = None

    @property
    def max_file_bytes(self) -> int:
        """The largest training file accepted."""
        return self._max_file_bytes

    # --- files ------------------------------------------------------------------------------------------

    async def upload_file(self, data: bytes, *, filename: str, purpose: str = "fine-tune") -> TrainingFile:
        """Check a JSONL file line by line (``InvalidRequest`` naming the first bad line) and keep it."""
        if purpose != "fine-tune":
            raise InvalidRequest(f"purpose {purpose!r} is not supported; use 'fine-tune'", param="purpose")
        if len(data) > self._max_file_bytes:
            raise InvalidRequest(f"the file is over {self._max_file_bytes} bytes", param="file")
        examples = sum(1 for _ in read_chat_jsonl(data.splitlines()))
        if not examples:
            raise InvalidRequest("the file holds no examples", param="file")
        file = TrainingFile(
            id=f"file-{uuid.uuid4().hex[:24]}",
            filename=filename,
            bytes=len(data),
            examples=examples,
            sha256=hashlib.sha256(data).hexdigest(),
            created_at=_now(),
        )
        self._files.put(file.id, data)
        await self._store.add_file(file)
        return file

    async def get_file(self, file_id: str) -> TrainingFile:
        found = await self._store.get_file(file_id)
        if found is None:
            raise NotFound(f"No file with id '{file_id}'", param="file_id")
        return found

    async def list_files(self, *, limit: int = 100, cursor: str | None = None) -> Page[TrainingFile]:
        """Newest first; ``cursor``: the previous page's ``next_cursor``."""
        if not 1 <= limit <= MAX_FILES_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_FILES_PAGE}", param="limit")
        found = await self._store.list_files(limit=limit + 1, after=cursor)
        return page_of(found, limit, lambda file: file.id)

    async def delete_file(self, file_id: str) -> TrainingFile:
        found = await self.get_file(file_id)
        await self._store.delete_file(file_id)
        self._files.delete(file_id)
        return found

    # --- jobs -------------------------------------------------------------------------------------------

    async def create_job(self, spec: JobSpec) -> TrainingJob:
        """Record the job and prepare its dataset; a dataset too small fails the job at once."""
        self._runner.base_model_path(spec.base_model)  # NotFound for a model that cannot be tuned
        if spec.source is DataSource.FILE:
            if spec.training_file is None:
                raise InvalidRequest("training_file is required", param="training_file")
            await self.get_file(spec.training_file)
            if spec.validation_file is not None:
                await self.get_file(spec.validation_file)
        if spec.suffix is not None and (len(spec.suffix) > 64 or not spec.suffix.replace("-", "").isalnum()):
            raise InvalidRequest("suffix: up to 64 letters, digits and dashes", param="suffix")
        job = TrainingJob(
            id=f"ftjob-{uuid.uuid4().hex[:24]}", spec=spec, status=JobStatus.QUEUED, created_at=_now()
        )
        await self._store.create(job)
        await self._event(job, "Created the fine-tuning job")
        try:
            prepared = await self._prepare(spec)
        except InvalidRequest as error:
            return await self._finish(job, JobStatus.FAILED, error=error.message)
        self._runner.store_dataset(job.id, prepared.train, prepared.validation)
        job = replace(job, stats=prepared.stats)
        await self._store.update(job)
        stats = prepared.stats
        await self._event(
            job,
            f"Dataset ready: {stats.train} training and {stats.validation} validation examples "
            f"({stats.kept} of {stats.seen} kept)",
            data=stats.as_dict(),
        )
        self._wake.set()
        return job

    async def _prepare(self, spec: JobSpec) -> PreparedDataset:
        if spec.source is DataSource.CONVERSATIONS:
            if self._catch_up is not None:
                await self._catch_up()
            where = ConversationFilter(since=spec.since) if spec.since else None
            return await prepare_from_conversations(self._conversations(where), spec.quality, spec.split)
        assert spec.training_file is not None
        examples = list(read_chat_jsonl(self._files.lines(spec.training_file)))
        if spec.validation_file is None:
            return prepare_examples(examples, spec.quality, spec.split)
        train = prepare_examples(examples, spec.quality, replace(spec.split, validation_fraction=0.0))
        checks = list(read_chat_jsonl(self._files.lines(spec.validation_file)))
        held = prepare_examples(
            checks, replace(spec.quality, min_examples=1), replace(spec.split, validation_fraction=0.0)
        )
        stats = replace(train.stats, validation=len(held.train))
        return PreparedDataset(train=train.train, validation=held.train, stats=stats)

    async def get_job(self, job_id: str) -> TrainingJob:
        found = await self._store.get(job_id)
        if found is None:
            raise NotFound(f"No fine-tuning job with id '{job_id}'", param="fine_tuning_job_id")
        return found

    async def list_jobs(self, *, limit: int = 20, cursor: str | None = None) -> Page[TrainingJob]:
        """Newest first; ``cursor``: the previous page's ``next_cursor``."""
        _check_limit(limit)
        found = await self._store.list_jobs(limit=limit + 1, after=cursor)
        return page_of(found, limit, lambda job: job.id)

    async def events(self, job_id: str, *, limit: int = 20, cursor: str | None = None) -> Page[JobEvent]:
        """A job's events, newest first; ``cursor``: the previous page's ``next_cursor``."""
        await self.get_job(job_id)
        _check_limit(limit)
        found = await self._store.events(job_id, limit=limit + 1, after=cursor)
        return page_of(found, limit, lambda event: event.id)

    async def checkpoints(self, job_id: str) -> list[Checkpoint]:
        await self.get_job(job_id)
        return self._runner.checkpoints(job_id)

    async def cancel_job(self, job_id: str) -> TrainingJob:
        """A queued job is cancelled at once; a running one stops after its current step."""
        job = await self.get_job(job_id)
        if job.status.finished:
            raise InvalidRequest(f"the job is already {job.status.value}", param="fine_tuning_job_id")
        if job.status is JobStatus.QUEUED:
            return await self._finish(job, JobStatus.CANCELLED)
        self._runner.cancel(job_id)
        await self._event(job, "Cancellation requested; the job stops after its current step")
        return job

    # --- the scheduler ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Re-queue jobs a restart interrupted, then run queued jobs one at a time."""
        for job in await self._store.list_jobs(limit=MAX_PAGE, statuses=(JobStatus.RUNNING,)):
            await self._store.update(replace(job, status=JobStatus.QUEUED))
            await self._event(
                job, "Interrupted by a server restart; queued to resume from its last checkpoint", "warn"
            )
        if self._publish is not None:  # the models of finished jobs are served again after a restart
            for done in await self._store.list_jobs(limit=MAX_PAGE, statuses=(JobStatus.SUCCEEDED,)):
                if done.fine_tuned_model:
                    try:
                        await self._publish(done)
                    except MindFuError as error:
                        log.warning("cannot serve %s again: %s", done.fine_tuned_model, error.message)
        self._task = asyncio.create_task(self._schedule(), name="mindfu-training-scheduler")

    async def aclose(self) -> None:
        """Stop scheduling; a running job's worker is asked to stop (it resumes at the next start)."""
        if self._running is not None:
            self._runner.cancel(self._running)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _schedule(self) -> None:
        while True:
            queued = await self._store.list_jobs(limit=MAX_PAGE, statuses=(JobStatus.QUEUED,))
            if not queued:
                self._wake.clear()
                await self._wake.wait()
                continue
            job = queued[-1]  # the oldest
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # never lose the scheduler to one job
                log.exception("training job %s failed in the scheduler", job.id)

    async def _run(self, job: TrainingJob) -> None:
        if not self._runner.has_dataset(job.id):
            try:
                prepared = await self._prepare(job.spec)
            except InvalidRequest as error:
                await self._finish(job, JobStatus.FAILED, error=error.message)
                return
            self._runner.store_dataset(job.id, prepared.train, prepared.validation)
        job = replace(
            job, status=JobStatus.RUNNING, started_at=job.started_at or _now(), attempts=job.attempts + 1
        )
        await self._store.update(job)
        await self._event(job, f"Training started (attempt {job.attempts})")
        self._running = job.id
        state = {"job": job}

        async def report(update: RunnerUpdate) -> None:
            current = state["job"]
            if update.progress is not None:
                current = replace(current, progress=update.progress)
            if update.tracking_run_id is not None:
                current = replace(current, tracking_run_id=update.tracking_run_id)
            if current is not state["job"]:
                state["job"] = current
                await self._store.update(current)
            if update.metrics and "loss" in update.metrics:
                total = current.progress.total_steps
                shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(update.metrics.items()))
                await self._event(
                    current, f"Step {update.step}/{total}: {shown}", data=dict(update.metrics), kind="metrics"
                )
            if update.message:
                await self._event(current, update.message, update.level)

        try:
            result = await self._runner.run(job, report)
        except MindFuError as error:
            await self._finish(state["job"], JobStatus.FAILED, error=error.message)
            return
        finally:
            self._running = None
        if result.cancelled or result.outcome is None:
            if self._task is not None and self._task.cancelling():
                return  # shutting down: the job stays running in the record, resumed at the next start
            await self._finish(state["job"], JobStatus.CANCELLED)
            return
        await self._succeed(state["job"], result)

    async def _succeed(self, job: TrainingJob, result: RunResult) -> None:
        outcome = result.outcome
        assert outcome is not None
        job = replace(job, outcome=outcome, artifacts={**job.artifacts, **result.artifacts})
        for note in outcome.notes:
            await self._event(job, note, "warn")
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
            await self._event(
                job,
                f"Validation loss {tuned:.4f} (perplexity {perplexity(tuned):.2f}) against the base model's "
                f"{base:.4f} (perplexity {perplexity(base):.2f})",
                data={"eval_loss": tuned, "base_eval_loss": base},
            )
        if policy is RegisterPolicy.IF_BETTER and not better:
            await self._event(job, "Not registered: the tuned model does not beat the base model", "warn")
        if job.fine_tuned_model and self._publish is not None:
            try:
                if await self._publish(job):
                    await self._event(job, f"Serving the tuned model as {job.fine_tuned_model}")
            except MindFuError as error:
                await self._event(job, f"The tuned model could not be served: {error.message}", "error")
        await self._finish(job, JobStatus.SUCCEEDED)

    async def _finish(self, job: TrainingJob, status: JobStatus, *, error: str | None = None) -> TrainingJob:
        job = replace(job, status=status, finished_at=_now(), error=error)
        await self._store.update(job)
        messages = {
            JobStatus.SUCCEEDED: "The job has successfully completed",
            JobStatus.CANCELLED: "The job was cancelled",
            JobStatus.FAILED: f"The job failed: {error}",
        }
        await self._event(
            job, messages.get(status, status.value), "error" if status is JobStatus.FAILED else "info"
        )
        return job

    async def _event(
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
            created_at=_now(),
            level=level,
            message=message,
            data={"type": kind, **(data or {})},
        )
        await self._store.add_event(event)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", param="limit")
