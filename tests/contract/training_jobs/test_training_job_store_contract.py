"""The TrainingJobStore contract: in memory, SQLite and PostgreSQL (the real server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mindfu_adapters.store.memory_training import InMemoryTrainingJobStore
from mindfu_adapters.store.sql import Database
from mindfu_adapters.store.training import SqlTrainingJobStore
from mindfu_core.domain.conversations import CompletionStatus
from mindfu_core.domain.training import (
    DatasetStats,
    DataSource,
    Hyperparameters,
    JobEvent,
    JobSpec,
    JobStatus,
    Progress,
    QualityPolicy,
    RegisterPolicy,
    TrainingFile,
    TrainingJob,
    TrainingOutcome,
)
from mindfu_core.errors import NotFound
from mindfu_core.ports.training_jobs import TrainingJobStore
from tests.postgres import fresh_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TrainingJobStore]:
    if request.param == "memory":
        yield InMemoryTrainingJobStore()
        return
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'training.db'}")
        await database.migrate()
        yield SqlTrainingJobStore(database)
        await database.aclose()
        return
    async with fresh_database() as url:
        database = Database(url)
        await database.migrate()
        yield SqlTrainingJobStore(database)
        await database.aclose()


def job(number: int, **changes: object) -> TrainingJob:
    spec = JobSpec(
        base_model="smollm2-135m-instruct",
        source=DataSource.CONVERSATIONS,
        since=T0,
        quality=QualityPolicy(min_turns=2, statuses=(CompletionStatus.OK, CompletionStatus.CANCELLED)),
        hyperparameters=Hyperparameters(epochs=1.5, max_steps=20, load_in_4bit=False),
        suffix="mine",
        register=RegisterPolicy.IF_BETTER,
    )
    base = TrainingJob(
        id=f"ftjob-{number:04d}",
        spec=spec,
        status=JobStatus.QUEUED,
        created_at=T0 + timedelta(minutes=number),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_a_job_round_trips_with_every_field(store: TrainingJobStore) -> None:
    original = job(1)
    await store.create(original)
    assert await store.get(original.id) == original
    finished = replace(
        original,
        status=JobStatus.SUCCEEDED,
        started_at=T0 + timedelta(minutes=2),
        finished_at=T0 + timedelta(minutes=9),
        progress=Progress(
            step=20, total_steps=20, epoch=1.5, loss=1.25, eval_loss=1.5, tokens_per_s=900.0, eta_s=0.0
        ),
        stats=DatasetStats(
            seen=10, kept=8, dropped={"status": 2}, train=7, validation=1, characters=900, tokens=300
        ),
        outcome=TrainingOutcome(
            adapter_dir="/x/adapter", steps=20, eval_loss=1.5, base_eval_loss=2.0, notes=("no CUDA",)
        ),
        artifacts={"adapter": "/x/adapter", "merged": "/x/merged"},
        tracking_run_id="abc123",
        fine_tuned_model="ft:smollm2-135m-instruct:mine:ftjob-0001",
        attempts=2,
    )
    await store.update(finished)
    assert await store.get(original.id) == finished
    assert await store.get("ftjob-none") is None
    with pytest.raises(NotFound):
        await store.update(job(99))


async def test_jobs_list_newest_first_by_page_and_status(store: TrainingJobStore) -> None:
    for number in range(1, 6):
        await store.create(job(number, status=JobStatus.FAILED if number % 2 else JobStatus.QUEUED))
    first = await store.list_jobs(limit=2)
    assert [j.id for j in first] == ["ftjob-0005", "ftjob-0004"]
    second = await store.list_jobs(limit=2, after=first[-1].id)
    assert [j.id for j in second] == ["ftjob-0003", "ftjob-0002"]
    queued = await store.list_jobs(statuses=(JobStatus.QUEUED,))
    assert [j.id for j in queued] == ["ftjob-0004", "ftjob-0002"]
    with pytest.raises(NotFound):
        await store.list_jobs(after="ftjob-missing")


async def test_events_page_newest_first(store: TrainingJobStore) -> None:
    await store.create(job(1))
    await store.create(job(2))
    for number in range(5):
        await store.add_event(
            JobEvent(
                id=f"ftevent-{number}",
                job_id="ftjob-0001",
                created_at=T0,
                level="info",
                message=f"m{number}",
                data={"step": number},
            )
        )
    await store.add_event(
        JobEvent(id="ftevent-other", job_id="ftjob-0002", created_at=T0, level="warn", message="x")
    )
    page = await store.events("ftjob-0001", limit=3)
    assert [e.message for e in page] == ["m4", "m3", "m2"] and page[0].data == {"step": 4}
    rest = await store.events("ftjob-0001", limit=3, after=page[-1].id)
    assert [e.message for e in rest] == ["m1", "m0"]
    assert [e.level for e in await store.events("ftjob-0002")] == ["warn"]


async def test_training_files(store: TrainingJobStore) -> None:
    files = [
        TrainingFile(
            id=f"file-{n}",
            filename=f"train{n}.jsonl",
            bytes=100 * n,
            examples=n,
            sha256=f"{n:064x}",
            created_at=T0 + timedelta(seconds=n),
        )
        for n in (1, 2)
    ]
    for file in files:
        await store.add_file(file)
    assert await store.get_file("file-1") == files[0]
    assert [f.id for f in await store.list_files()] == ["file-2", "file-1"]
    assert [f.id for f in await store.list_files(limit=1, after="file-2")] == ["file-1"]
    with pytest.raises(NotFound):
        await store.list_files(after="file-missing")
    assert await store.delete_file("file-1") and not await store.delete_file("file-1")
    assert await store.get_file("file-1") is None


async def test_a_queued_job_is_claimed_once_and_held_by_its_lease(store: TrainingJobStore) -> None:
    """Two schedulers on one store: the claim is atomic, only the owner renews, and a job is abandoned
    when its lease runs out (or was ended), never while it is held."""
    await store.create(job(1))
    now = datetime.now(UTC)
    assert await store.claim("ftjob-0001", "a", now + timedelta(seconds=60))
    assert not await store.claim("ftjob-0001", "b", now + timedelta(seconds=60))
    claimed = await store.get("ftjob-0001")
    assert claimed is not None and claimed.status is JobStatus.RUNNING
    assert await store.abandoned(now) == []
    assert await store.renew("ftjob-0001", "a", now + timedelta(seconds=120))
    assert not await store.renew("ftjob-0001", "b", now + timedelta(seconds=120))
    assert await store.abandoned(now + timedelta(seconds=90)) == []
    assert [j.id for j in await store.abandoned(now + timedelta(seconds=121))] == ["ftjob-0001"]
    await store.update(replace(claimed, attempts=3))  # progress writes keep the lease
    assert await store.renew("ftjob-0001", "a", now + timedelta(seconds=60))
    await store.give_up("ftjob-0001")
    assert not await store.renew("ftjob-0001", "a", now + timedelta(seconds=60))
    assert [j.id for j in await store.abandoned(now)] == ["ftjob-0001"]
    await store.update(replace(claimed, status=JobStatus.CANCELLED))
    assert await store.abandoned(now + timedelta(days=1)) == []  # finished jobs are nobody's concern
    assert not await store.claim("ftjob-0001", "b", now + timedelta(seconds=60))
    assert not await store.claim("ftjob-nope", "b", now + timedelta(seconds=60))


async def test_a_job_running_without_a_lease_is_abandoned(store: TrainingJobStore) -> None:
    """Jobs recorded running before leases existed (or written so by hand) count as interrupted."""
    await store.create(job(2, status=JobStatus.RUNNING))
    assert [j.id for j in await store.abandoned(datetime.now(UTC))] == ["ftjob-0002"]


async def test_files_and_jobs_keep_their_tenant_and_list_by_it(store: TrainingJobStore) -> None:
    for n, tenant in ((1, "default"), (2, "acme"), (3, "acme")):
        await store.add_file(
            TrainingFile(
                id=f"file-{n}",
                filename="train.jsonl",
                bytes=10,
                examples=1,
                sha256=f"{n:064x}",
                created_at=T0 + timedelta(seconds=n),
                tenant=tenant,
            )
        )
        await store.create(job(n, tenant=tenant))
    found = await store.get_file("file-2")
    assert found is not None and found.tenant == "acme"
    stored = await store.get("ftjob-0002")
    assert stored is not None and stored.tenant == "acme"
    assert [f.id for f in await store.list_files(tenant="acme")] == ["file-3", "file-2"]
    assert [f.id for f in await store.list_files(tenant="default")] == ["file-1"]
    assert [f.id for f in await store.list_files(tenant="acme", limit=1, after="file-3")] == ["file-2"]
    assert [j.id for j in await store.list_jobs(tenant="acme")] == ["ftjob-0003", "ftjob-0002"]
    assert [j.id for j in await store.list_jobs(tenant="globex")] == []
    assert len(await store.list_jobs()) == 3
