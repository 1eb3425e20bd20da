"""SqlTrainingJobStore: training files, jobs and events in SQL (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mindfu_adapters.store import training_codec as codec
from mindfu_adapters.store.sql import Database
from mindfu_adapters.store.tables import training_events, training_files, training_jobs
from mindfu_core.domain.training import JobEvent, JobStatus, TrainingFile, TrainingJob
from mindfu_core.errors import NotFound


class SqlTrainingJobStore:
    """The ``TrainingJobStore`` port over the shared ``Database``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_file(self, file: TrainingFile) -> None:
        async with self._db.transaction(f"recording training file {file.id}") as connection:
            await connection.execute(training_files.insert().values(**_file_row(file)))

    async def get_file(self, file_id: str) -> TrainingFile | None:
        async with self._db.connection(f"reading training file {file_id}") as connection:
            row = (
                (await connection.execute(training_files.select().where(training_files.c.id == file_id)))
                .mappings()
                .first()
            )
        return None if row is None else _file(row)

    async def list_files(
        self, *, limit: int = 100, after: str | None = None, tenant: str | None = None
    ) -> list[TrainingFile]:
        newest = (training_files.c.created_at.desc(), training_files.c.id.desc())
        query = training_files.select().order_by(*newest)
        if tenant is not None:
            query = query.where(training_files.c.tenant == tenant)
        async with self._db.connection("listing training files") as connection:
            if after is not None:
                anchor = (
                    await connection.execute(
                        sa.select(training_files.c.created_at).where(training_files.c.id == after)
                    )
                ).scalar()
                if anchor is None:
                    raise NotFound(f"no training file {after!r} to list after", param="after")
                query = query.where(
                    sa.or_(
                        training_files.c.created_at < anchor,
                        sa.and_(training_files.c.created_at == anchor, training_files.c.id < after),
                    )
                )
            rows = (await connection.execute(query.limit(limit))).mappings().all()
        return [_file(row) for row in rows]

    async def delete_file(self, file_id: str) -> bool:
        async with self._db.transaction(f"deleting training file {file_id}") as connection:
            result = await connection.execute(training_files.delete().where(training_files.c.id == file_id))
        return bool(result.rowcount)

    async def create(self, job: TrainingJob) -> None:
        async with self._db.transaction(f"recording training job {job.id}") as connection:
            await connection.execute(training_jobs.insert().values(**_job_row(job)))

    async def get(self, job_id: str) -> TrainingJob | None:
        async with self._db.connection(f"reading training job {job_id}") as connection:
            row = (
                (await connection.execute(training_jobs.select().where(training_jobs.c.id == job_id)))
                .mappings()
                .first()
            )
        return None if row is None else _job(row)

    async def list_jobs(
        self,
        *,
        limit: int = 20,
        after: str | None = None,
        statuses: tuple[JobStatus, ...] | None = None,
        tenant: str | None = None,
    ) -> list[TrainingJob]:
        query = training_jobs.select().order_by(training_jobs.c.created_at.desc(), training_jobs.c.id.desc())
        if tenant is not None:
            query = query.where(training_jobs.c.tenant == tenant)
        if statuses:
            query = query.where(training_jobs.c.status.in_([s.value for s in statuses]))
        async with self._db.connection("listing training jobs") as connection:
            if after is not None:
                anchor = (
                    await connection.execute(
                        sa.select(training_jobs.c.created_at).where(training_jobs.c.id == after)
                    )
                ).scalar()
                if anchor is None:
                    raise NotFound(f"no training job {after!r} to list after", param="after")
                query = query.where(
                    sa.or_(
                        training_jobs.c.created_at < anchor,
                        sa.and_(training_jobs.c.created_at == anchor, training_jobs.c.id < after),
                    )
                )
            rows = (await connection.execute(query.limit(limit))).mappings().all()
        return [_job(row) for row in rows]

    async def update(self, job: TrainingJob) -> None:
        values = _job_row(job)
        del values["id"]
        async with self._db.transaction(f"updating training job {job.id}") as connection:
            result = await connection.execute(
                training_jobs.update().where(training_jobs.c.id == job.id).values(**values)
            )
        if not result.rowcount:
            raise NotFound(f"no training job {job.id!r}")

    async def claim(self, job_id: str, owner: str, until: datetime) -> bool:
        queued = sa.and_(training_jobs.c.id == job_id, training_jobs.c.status == JobStatus.QUEUED.value)
        values = {"status": JobStatus.RUNNING.value, "lease_owner": owner, "lease_until": until}
        async with self._db.transaction(f"claiming training job {job_id}") as connection:
            result = await connection.execute(training_jobs.update().where(queued).values(**values))
        return bool(result.rowcount)

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        mine = sa.and_(
            training_jobs.c.id == job_id,
            training_jobs.c.status == JobStatus.RUNNING.value,
            training_jobs.c.lease_owner == owner,
        )
        async with self._db.transaction(f"renewing the lease of job {job_id}") as connection:
            result = await connection.execute(training_jobs.update().where(mine).values(lease_until=until))
        return bool(result.rowcount)

    async def give_up(self, job_id: str) -> None:
        async with self._db.transaction(f"ending the lease of job {job_id}") as connection:
            await connection.execute(
                training_jobs.update()
                .where(training_jobs.c.id == job_id)
                .values(lease_owner=None, lease_until=None)
            )

    async def abandoned(self, now: datetime) -> list[TrainingJob]:
        lapsed = sa.and_(
            training_jobs.c.status == JobStatus.RUNNING.value,
            sa.or_(training_jobs.c.lease_until.is_(None), training_jobs.c.lease_until < now),
        )
        query = training_jobs.select().where(lapsed).order_by(training_jobs.c.created_at, training_jobs.c.id)
        async with self._db.connection("finding abandoned training jobs") as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_job(row) for row in rows]

    async def add_event(self, event: JobEvent) -> None:
        async with self._db.transaction(f"recording an event of job {event.job_id}") as connection:
            await connection.execute(
                training_events.insert().values(
                    id=event.id,
                    job_id=event.job_id,
                    created_at=event.created_at,
                    level=event.level,
                    message=event.message,
                    data=dict(event.data),
                )
            )

    async def events(self, job_id: str, *, limit: int = 20, after: str | None = None) -> list[JobEvent]:
        query = training_events.select().where(training_events.c.job_id == job_id)
        async with self._db.connection(f"reading the events of job {job_id}") as connection:
            if after is not None:
                seq = (
                    await connection.execute(
                        sa.select(training_events.c.seq).where(training_events.c.id == after)
                    )
                ).scalar()
                if seq is None:
                    raise NotFound(f"no event {after!r} to list after", param="after")
                query = query.where(training_events.c.seq < seq)
            rows = (
                (await connection.execute(query.order_by(training_events.c.seq.desc()).limit(limit)))
                .mappings()
                .all()
            )
        return [
            JobEvent(
                id=row["id"],
                job_id=row["job_id"],
                created_at=row["created_at"],
                level=row["level"],
                message=row["message"],
                data=dict(row["data"] or {}),
            )
            for row in rows
        ]


def _file_row(file: TrainingFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "filename": file.filename,
        "purpose": file.purpose,
        "bytes": file.bytes,
        "examples": file.examples,
        "sha256": file.sha256,
        "created_at": file.created_at,
        "tenant": file.tenant,
    }


def _file(row: Any) -> TrainingFile:
    return TrainingFile(
        id=row["id"],
        filename=row["filename"],
        purpose=row["purpose"],
        bytes=row["bytes"],
        examples=row["examples"],
        sha256=row["sha256"],
        created_at=row["created_at"],
        tenant=row["tenant"],
    )


def _job_row(job: TrainingJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "base_model": job.spec.base_model,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "spec": codec.spec_to_dict(job.spec),
        "progress": codec.progress_to_dict(job.progress),
        "stats": codec.stats_to_dict(job.stats),
        "outcome": codec.outcome_to_dict(job.outcome),
        "artifacts": dict(job.artifacts),
        "mlflow_run_id": job.tracking_run_id,
        "fine_tuned_model": job.fine_tuned_model,
        "error": job.error,
        "attempts": job.attempts,
        "tenant": job.tenant,
    }


def _job(row: Any) -> TrainingJob:
    return TrainingJob(
        id=row["id"],
        spec=codec.spec_from_dict(dict(row["spec"])),
        status=JobStatus(row["status"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        progress=codec.progress_from_dict(row["progress"]),
        stats=codec.stats_from_dict(row["stats"]),
        outcome=codec.outcome_from_dict(row["outcome"]),
        artifacts=dict(row["artifacts"] or {}),
        tracking_run_id=row["mlflow_run_id"],
        fine_tuned_model=row["fine_tuned_model"],
        error=row["error"],
        attempts=row["attempts"],
        tenant=row["tenant"],
    )
