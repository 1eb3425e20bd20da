"""A TrainingJobStore held in this process (library use and tests; nothing survives a restart)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from mindfu_core.domain.training import JobEvent, JobStatus, TrainingFile, TrainingJob
from mindfu_core.errors import Conflict, NotFound


class InMemoryTrainingJobStore:
    """Files, jobs and events in dicts and lists."""

    def __init__(self) -> None:
        self._files: dict[str, TrainingFile] = {}
        self._jobs: dict[str, TrainingJob] = {}
        self._order: list[str] = []
        self._events: list[JobEvent] = []
        self._leases: dict[str, tuple[str, datetime]] = {}  # job id -> (owner, until)

    async def add_file(self, file: TrainingFile) -> None:
        if file.id in self._files:
            raise Conflict(f"training file {file.id} exists")
        self._files[file.id] = file

    async def get_file(self, file_id: str) -> TrainingFile | None:
        return self._files.get(file_id)

    async def list_files(
        self, *, limit: int = 100, after: str | None = None, tenant: str | None = None
    ) -> list[TrainingFile]:
        ordered = sorted(self._files.values(), key=lambda f: (f.created_at, f.id), reverse=True)
        ordered = [f for f in ordered if tenant is None or f.tenant == tenant]
        if after is not None:
            anchor = self._files.get(after)
            if anchor is None:
                raise NotFound(f"no training file {after!r} to list after", param="after")
            ordered = [f for f in ordered if (f.created_at, f.id) < (anchor.created_at, anchor.id)]
        return ordered[:limit]

    async def delete_file(self, file_id: str) -> bool:
        return self._files.pop(file_id, None) is not None

    async def create(self, job: TrainingJob) -> None:
        if job.id in self._jobs:
            raise Conflict(f"training job {job.id} exists")
        self._jobs[job.id] = job
        self._order.append(job.id)

    async def get(self, job_id: str) -> TrainingJob | None:
        return self._jobs.get(job_id)

    async def list_jobs(
        self,
        *,
        limit: int = 20,
        after: str | None = None,
        statuses: tuple[JobStatus, ...] | None = None,
        tenant: str | None = None,
    ) -> list[TrainingJob]:
        ordered = sorted(self._jobs.values(), key=lambda j: (j.created_at, j.id), reverse=True)
        ordered = [j for j in ordered if tenant is None or j.tenant == tenant]
        if after is not None:
            if after not in self._jobs:
                raise NotFound(f"no training job {after!r} to list after", param="after")
            anchor = self._jobs[after]
            ordered = [j for j in ordered if (j.created_at, j.id) < (anchor.created_at, anchor.id)]
        if statuses:
            ordered = [j for j in ordered if j.status in statuses]
        return ordered[:limit]

    async def update(self, job: TrainingJob) -> None:
        if job.id not in self._jobs:
            raise NotFound(f"no training job {job.id!r}")
        self._jobs[job.id] = job

    async def claim(self, job_id: str, owner: str, until: datetime) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.status is not JobStatus.QUEUED:
            return False
        self._jobs[job_id] = replace(job, status=JobStatus.RUNNING)
        self._leases[job_id] = (owner, until)
        return True

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        job = self._jobs.get(job_id)
        lease = self._leases.get(job_id)
        if job is None or job.status is not JobStatus.RUNNING or lease is None or lease[0] != owner:
            return False
        self._leases[job_id] = (owner, until)
        return True

    async def give_up(self, job_id: str) -> None:
        self._leases.pop(job_id, None)

    async def abandoned(self, now: datetime) -> list[TrainingJob]:
        def lapsed(job: TrainingJob) -> bool:
            lease = self._leases.get(job.id)
            return lease is None or lease[1] < now

        running = [j for j in self._jobs.values() if j.status is JobStatus.RUNNING and lapsed(j)]
        return sorted(running, key=lambda j: (j.created_at, j.id))

    async def add_event(self, event: JobEvent) -> None:
        self._events.append(event)

    async def events(self, job_id: str, *, limit: int = 20, after: str | None = None) -> list[JobEvent]:
        mine = [e for e in reversed(self._events) if e.job_id == job_id]
        if after is not None:
            ids = [e.id for e in mine]
            if after not in ids:
                raise NotFound(f"no event {after!r} to list after", param="after")
            mine = mine[ids.index(after) + 1 :]
        return mine[:limit]
