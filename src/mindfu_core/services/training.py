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
import os
import socket
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from mindfu_core.domain.conversations import Conversation, ConversationFilter
from mindfu_core.domain.pages import Page, page_of
from mindfu_core.domain.principals import DEFAULT_TENANT
from mindfu_core.domain.training import (
    Checkpoint,
    DataSource,
    JobEvent,
    JobSpec,
    JobStatus,
    TrainingFile,
    TrainingJob,
)
from mindfu_core.errors import InvalidRequest, MindFuError, NotFound
from mindfu_core.ports.blob_store import BlobStore
from mindfu_core.ports.training_jobs import TrainingJobStore
from mindfu_core.ports.training_runner import RunnerUpdate, TrainingRunner
from mindfu_core.services.dataset import read_chat_jsonl
from mindfu_core.services.training_data import PreparedDataset, prepare_examples, prepare_from_conversations
from mindfu_core.services.training_record import JobRecord, utc_now

log = logging.getLogger(__name__)
MAX_PAGE = 100
MAX_FILES_PAGE = 1000
#: how long a scheduler holds a job without renewing it (it renews every third of that while it runs)
LEASE_S = 60.0
ConversationSource = Callable[[ConversationFilter | None], AsyncIterable[Conversation]]


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
        lease_s: float = LEASE_S,
    ) -> None:
        """``catch_up`` lets the conversation log write what it holds before a dataset is read from it;
        ``publish`` serves a finished job's model under its ``fine_tuned_model`` name (true when it did).

        Several services may share one store (core processes, a local ``mindfu train``): a scheduler claims
        a queued job atomically and holds it by a lease of ``lease_s`` seconds that it renews while the job
        runs; a job whose lease ran out (its process stopped or died) is queued again by the next scheduler
        that looks, and resumes from its last checkpoint."""
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
        self._lease_s = lease_s
        self._record = JobRecord(store, publish)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def max_file_bytes(self) -> int:
        """The largest training file accepted."""
        return self._max_file_bytes

    # --- files ------------------------------------------------------------------------------------------

    async def upload_file(
        self, data: bytes, *, filename: str, purpose: str = "fine-tune", tenant: str | None = None
    ) -> TrainingFile:
        """Check a JSONL file line by line (``InvalidRequest`` naming the first bad line) and keep it, as
        ``tenant``'s (the default tenant's when None)."""
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
            created_at=utc_now(),
            tenant=tenant or DEFAULT_TENANT,
        )
        self._files.put(file.id, data)
        await self._store.add_file(file)
        return file

    async def get_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        """The file; ``NotFound`` when there is none, or it is not ``tenant``'s (None: any tenant's)."""
        found = await self._store.get_file(file_id)
        if found is None or not _owns(tenant, found.tenant):
            raise NotFound(f"No file with id '{file_id}'", param="file_id")
        return found

    async def list_files(
        self, *, limit: int = 100, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingFile]:
        """``tenant``'s files, newest first; ``cursor``: the previous page's ``next_cursor``."""
        if not 1 <= limit <= MAX_FILES_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_FILES_PAGE}", param="limit")
        found = await self._store.list_files(limit=limit + 1, after=cursor, tenant=tenant)
        return page_of(found, limit, lambda file: file.id)

    async def delete_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        found = await self.get_file(file_id, tenant=tenant)
        await self._store.delete_file(file_id)
        self._files.delete(file_id)
        return found

    # --- jobs -------------------------------------------------------------------------------------------

    async def create_job(self, spec: JobSpec, *, tenant: str | None = None) -> TrainingJob:
        """Record ``tenant``'s job and prepare its dataset from its conversations or files; a dataset too
        small fails the job at once."""
        owner = tenant or DEFAULT_TENANT
        self._runner.base_model_path(spec.base_model)  # NotFound for a model that cannot be tuned
        if spec.source is DataSource.FILE:
            if spec.training_file is None:
                raise InvalidRequest("training_file is required", param="training_file")
            await self.get_file(spec.training_file, tenant=owner)
            if spec.validation_file is not None:
                await self.get_file(spec.validation_file, tenant=owner)
        if spec.suffix is not None and (len(spec.suffix) > 64 or not spec.suffix.replace("-", "").isalnum()):
            raise InvalidRequest("suffix: up to 64 letters, digits and dashes", param="suffix")
        job = TrainingJob(
            id=f"ftjob-{uuid.uuid4().hex[:24]}",
            spec=spec,
            status=JobStatus.QUEUED,
            created_at=utc_now(),
            tenant=owner,
        )
        await self._store.create(job)
        await self._record.event(job, "Created the fine-tuning job")
        try:
            prepared = await self._prepare(spec, owner)
        except InvalidRequest as error:
            return await self._record.finish(job, JobStatus.FAILED, error=error.message)
        self._runner.store_dataset(job.id, prepared.train, prepared.validation)
        job = replace(job, stats=prepared.stats)
        await self._store.update(job)
        stats = prepared.stats
        await self._record.event(
            job,
            f"Dataset ready: {stats.train} training and {stats.validation} validation examples "
            f"({stats.kept} of {stats.seen} kept)",
            data=stats.as_dict(),
        )
        self._wake.set()
        return job

    async def _prepare(self, spec: JobSpec, tenant: str) -> PreparedDataset:
        if spec.source is DataSource.CONVERSATIONS:
            if self._catch_up is not None:
                await self._catch_up()
            where = ConversationFilter(since=spec.since, tenant=tenant)  # the tenant's own conversations
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

    async def get_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        """The job; ``NotFound`` when there is none, or it is not ``tenant``'s (None: any tenant's)."""
        found = await self._store.get(job_id)
        if found is None or not _owns(tenant, found.tenant):
            raise NotFound(f"No fine-tuning job with id '{job_id}'", param="fine_tuning_job_id")
        return found

    async def list_jobs(
        self, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingJob]:
        """``tenant``'s jobs, newest first; ``cursor``: the previous page's ``next_cursor``."""
        _check_limit(limit)
        found = await self._store.list_jobs(limit=limit + 1, after=cursor, tenant=tenant)
        return page_of(found, limit, lambda job: job.id)

    async def events(
        self, job_id: str, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[JobEvent]:
        """A job's events, newest first; ``cursor``: the previous page's ``next_cursor``."""
        await self.get_job(job_id, tenant=tenant)
        _check_limit(limit)
        found = await self._store.events(job_id, limit=limit + 1, after=cursor)
        return page_of(found, limit, lambda event: event.id)

    async def checkpoints(self, job_id: str, *, tenant: str | None = None) -> list[Checkpoint]:
        await self.get_job(job_id, tenant=tenant)
        return self._runner.checkpoints(job_id)

    async def cancel_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        """A queued job is cancelled at once; a running one stops after its current step."""
        job = await self.get_job(job_id, tenant=tenant)
        if job.status.finished:
            raise InvalidRequest(f"the job is already {job.status.value}", param="fine_tuning_job_id")
        if job.status is JobStatus.QUEUED:
            return await self._record.finish(job, JobStatus.CANCELLED)
        if self._running != job_id:
            # running in another process: the record says cancelled now, and that scheduler, finding its
            # lease gone at its next renewal, stops the worker
            return await self._record.finish(job, JobStatus.CANCELLED)
        self._runner.cancel(job_id)
        await self._record.event(job, "Cancellation requested; the job stops after its current step")
        return job

    # --- the scheduler ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Re-queue jobs a restart interrupted, then run queued jobs one at a time."""
        await self._recover()
        if self._publish is not None:  # the models of finished jobs are served again after a restart
            for done in await self._store.list_jobs(limit=MAX_PAGE, statuses=(JobStatus.SUCCEEDED,)):
                if done.fine_tuned_model:
                    try:
                        await self._publish(done)
                    except MindFuError as error:
                        log.warning("cannot serve %s again: %s", done.fine_tuned_model, error.message)
        self._task = asyncio.create_task(self._schedule(), name="mindfu-training-scheduler")

    async def _recover(self) -> None:
        """Queue again the running jobs whose scheduler stopped without finishing them (lease ran out)."""
        for job in await self._store.abandoned(utc_now()):
            await self._store.update(replace(job, status=JobStatus.QUEUED))
            await self._record.event(
                job,
                "Interrupted by a server restart (or its process stopped); queued to resume from its last "
                "checkpoint",
                "warn",
            )

    async def aclose(self) -> None:
        """Stop scheduling; a running job's worker is asked to stop, and its lease given up so that the next
        scheduler to start resumes it."""
        running = self._running
        if running is not None:
            self._runner.cancel(running)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if running is not None:
            await self._store.give_up(running)

    def _lease_end(self) -> datetime:
        return utc_now() + timedelta(seconds=self._lease_s)

    async def _schedule(self) -> None:
        while True:
            queued = await self._store.list_jobs(limit=MAX_PAGE, statuses=(JobStatus.QUEUED,))
            if not queued:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._lease_s)
                await self._recover()  # another process's job may have been left behind meanwhile
                continue
            job = queued[-1]  # the oldest
            if not await self._store.claim(job.id, self._owner, self._lease_end()):
                continue  # another scheduler took it first
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # never lose the scheduler to one job
                log.exception("training job %s failed in the scheduler", job.id)

    async def _run(self, job: TrainingJob) -> None:
        self._running = job.id
        try:
            await self._run_claimed(job)
        finally:
            self._running = None

    async def _keep_lease(self, job_id: str, state: dict[str, Any]) -> None:
        """Renew the job's lease while it runs; a lease this scheduler lost (the job was cancelled by another
        process, or taken for abandoned) stops the worker, and nothing more is written for the job here."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            if not await self._store.renew(job_id, self._owner, self._lease_end()):
                log.warning("job %s is not this scheduler's any more: its worker stops", job_id)
                state["lost"] = True
                self._runner.cancel(job_id)
                return

    async def _run_claimed(self, job: TrainingJob) -> None:
        if not self._runner.has_dataset(job.id):
            try:
                prepared = await self._prepare(job.spec, job.tenant)
            except InvalidRequest as error:
                await self._record.finish(job, JobStatus.FAILED, error=error.message)
                return
            self._runner.store_dataset(job.id, prepared.train, prepared.validation)
        claimed = await self._store.get(job.id)
        if claimed is None or claimed.status is not JobStatus.RUNNING:
            return  # cancelled (from another process) while its dataset was being prepared
        job = replace(
            job, status=JobStatus.RUNNING, started_at=job.started_at or utc_now(), attempts=job.attempts + 1
        )
        await self._store.update(job)
        await self._record.event(job, f"Training started (attempt {job.attempts})")
        state: dict[str, Any] = {"job": job, "lost": False}

        async def report(update: RunnerUpdate) -> None:
            if state["lost"]:
                return  # the record is another process's now (or says cancelled): leave it as it is
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
                await self._record.event(
                    current, f"Step {update.step}/{total}: {shown}", data=dict(update.metrics), kind="metrics"
                )
            if update.message:
                await self._record.event(current, update.message, update.level)

        lease = asyncio.create_task(self._keep_lease(job.id, state), name=f"mindfu-lease-{job.id}")
        try:
            result = await self._runner.run(job, report)
        except MindFuError as error:
            if not state["lost"]:
                await self._record.finish(state["job"], JobStatus.FAILED, error=error.message)
            return
        finally:
            lease.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease
        if state["lost"]:
            return
        if result.cancelled or result.outcome is None:
            if self._task is not None and self._task.cancelling():
                return  # shutting down: the job stays running in the record, resumed at the next start
            await self._record.finish(state["job"], JobStatus.CANCELLED)
            return
        await self._record.succeed(state["job"], result)


def _owns(tenant: str | None, owner: str) -> bool:
    return tenant is None or tenant == owner


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", param="limit")
