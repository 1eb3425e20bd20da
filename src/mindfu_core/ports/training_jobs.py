"""The TrainingJobStore port: durable records of uploaded training files, jobs and their events."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mindfu_core.domain.training import JobEvent, JobStatus, TrainingFile, TrainingJob


class TrainingJobStore(Protocol):
    """Where fine-tuning state lives (SQL in production; it must survive a server restart)."""

    async def add_file(self, file: TrainingFile) -> None: ...

    async def get_file(self, file_id: str) -> TrainingFile | None: ...

    async def list_files(
        self, *, limit: int = 100, after: str | None = None, tenant: str | None = None
    ) -> list[TrainingFile]:
        """Newest first (``tenant``'s only, unless None); ``after`` is the id of the last file of the
        previous page."""
        ...

    async def delete_file(self, file_id: str) -> bool: ...

    async def create(self, job: TrainingJob) -> None: ...

    async def get(self, job_id: str) -> TrainingJob | None: ...

    async def list_jobs(
        self,
        *,
        limit: int = 20,
        after: str | None = None,
        statuses: tuple[JobStatus, ...] | None = None,
        tenant: str | None = None,
    ) -> list[TrainingJob]:
        """Newest first (``tenant``'s only, unless None); ``after`` is the id of the last job of the
        previous page."""
        ...

    async def update(self, job: TrainingJob) -> None:
        """Replace the stored record of ``job.id`` (``NotFound`` when there is none)."""
        ...

    async def claim(self, job_id: str, owner: str, until: datetime) -> bool:
        """Take the queued job ``job_id`` for the scheduler ``owner`` until ``until``, atomically: its status
        becomes running; false when it is not queued any more (another scheduler took it, or it was
        cancelled)."""
        ...

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease of a running job; false when the job is not ``owner``'s any more (it
        finished, was given up, or its cancellation was asked for by another process)."""
        ...

    async def give_up(self, job_id: str) -> None:
        """End the lease of a running job, whoever holds it (its owner stops it at its next renewal)."""
        ...

    async def abandoned(self, now: datetime) -> list[TrainingJob]:
        """Running jobs whose lease ran out before ``now``: their scheduler stopped without finishing them."""
        ...

    async def add_event(self, event: JobEvent) -> None: ...

    async def events(self, job_id: str, *, limit: int = 20, after: str | None = None) -> list[JobEvent]:
        """Newest first; ``after`` is the id of the last event of the previous page."""
        ...
