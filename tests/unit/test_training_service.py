"""The fine-tuning use case over in-memory stores and a scripted runner: files checked line by line, jobs
prepared at creation (too few examples fail at once), run one at a time with progress and events, the
evaluation gate, cancellation, and recovery of a job a restart interrupted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mindfu_adapters.store.memory_training import InMemoryTrainingJobStore
from mindfu_core.domain.conversations import Conversation, ConversationFilter
from mindfu_core.domain.training import (
    ChatExample,
    Checkpoint,
    DataSource,
    JobSpec,
    JobStatus,
    Progress,
    RegisterPolicy,
    TrainingJob,
    TrainingOutcome,
)
from mindfu_core.errors import EngineFailure, InvalidRequest, NotFound
from mindfu_core.ports.training_runner import RunnerUpdate, RunResult
from mindfu_core.services.training import TrainingService


def line(question: str, answer: str) -> str:
    return json.dumps(
        {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
    )


GOOD = "\n".join(line(f"question {i}?", f"the answer is {i}.") for i in range(20)).encode()


class Blobs:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        self.data[key] = data

    def lines(self, key: str) -> Iterator[bytes]:
        if key not in self.data:
            raise NotFound(key)
        yield from self.data[key].splitlines()

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class ScriptedRunner:
    """Reports a few steps, then succeeds with the scripted losses (or fails, or stops when cancelled)."""

    def __init__(
        self, *, eval_loss: float = 1.0, base_eval_loss: float = 2.0, fail: str | None = None
    ) -> None:
        self.datasets: dict[str, tuple[int, int]] = {}
        self.runs: list[str] = []
        self.cancelled: set[str] = set()
        self.eval_loss, self.base_eval_loss, self.fail = eval_loss, base_eval_loss, fail
        self.gate = asyncio.Event()
        self.gate.set()

    def base_model_path(self, model: str) -> str:
        if model != "tiny":
            raise NotFound(f"The model '{model}' cannot be fine-tuned here", param="model")
        return "/models/tiny"

    def has_dataset(self, job_id: str) -> bool:
        return job_id in self.datasets

    def store_dataset(
        self, job_id: str, train: Sequence[ChatExample], validation: Sequence[ChatExample]
    ) -> None:
        self.datasets[job_id] = (len(train), len(validation))

    async def run(self, job: TrainingJob, report: Callable[[RunnerUpdate], Awaitable[None]]) -> RunResult:
        self.runs.append(job.id)
        await report(RunnerUpdate(tracking_run_id="run-1"))
        for step in (1, 2):
            await report(RunnerUpdate(progress=Progress(step=step, total_steps=2, loss=3.0 - step)))
            await report(RunnerUpdate(metrics={"loss": 3.0 - step}, step=step))
            await self.gate.wait()
            if job.id in self.cancelled:
                return RunResult(cancelled=True)
        if self.fail:
            raise EngineFailure(self.fail)
        outcome = TrainingOutcome(
            adapter_dir="/a",
            steps=2,
            eval_loss=self.eval_loss,
            base_eval_loss=self.base_eval_loss,
            notes=("no CUDA",),
        )
        return RunResult(outcome=outcome, artifacts={"adapter": "/a", "merged": "/m"})

    def cancel(self, job_id: str) -> None:
        self.cancelled.add(job_id)
        self.gate.set()

    def checkpoints(self, job_id: str) -> list[Checkpoint]:
        return [Checkpoint(step=2, path="/c")]


async def no_conversations(where: ConversationFilter | None) -> AsyncIterator[Conversation]:
    return
    yield  # pragma: no cover


def service(
    runner: ScriptedRunner | None = None, store: InMemoryTrainingJobStore | None = None
) -> TrainingService:
    return TrainingService(
        store or InMemoryTrainingJobStore(), runner or ScriptedRunner(), Blobs(), no_conversations
    )


async def settled(svc: TrainingService, job_id: str) -> TrainingJob:
    for _ in range(200):
        job = await svc.get_job(job_id)
        if job.status.finished:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def spec(file_id: str, **changes: object) -> JobSpec:
    base = JobSpec(base_model="tiny", source=DataSource.FILE, training_file=file_id)
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_a_bad_file_names_its_first_bad_line() -> None:
    svc = service()
    bad = GOOD + b"\n" + b'{"messages": [{"role": "user", "content": "hi"}]}\n'
    with pytest.raises(InvalidRequest, match="line 21") as caught:
        await svc.upload_file(bad, filename="bad.jsonl")
    assert caught.value.param == "file"
    with pytest.raises(InvalidRequest, match="line 1: not JSON"):
        await svc.upload_file(b"not json", filename="x.jsonl")
    with pytest.raises(InvalidRequest, match="purpose"):
        await svc.upload_file(GOOD, filename="x.jsonl", purpose="assistants")
    file = await svc.upload_file(GOOD, filename="train.jsonl")
    assert file.examples == 20 and file.id.startswith("file-")
    assert [f.id for f in (await svc.list_files()).items] == [file.id]


async def test_a_job_runs_reports_and_registers_its_model() -> None:
    runner = ScriptedRunner()
    svc = service(runner)
    await svc.start()
    file = await svc.upload_file(GOOD, filename="train.jsonl")
    job = await svc.create_job(spec(file.id, suffix="mine"))
    assert job.status is JobStatus.QUEUED and job.stats is not None and job.stats.kept == 20
    assert runner.datasets[job.id][0] + runner.datasets[job.id][1] == 20
    done = await settled(svc, job.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 1
    assert done.fine_tuned_model == f"ft:tiny:mine:{job.id}"
    assert done.tracking_run_id == "run-1" and done.progress.step == 2
    assert done.artifacts == {"adapter": "/a", "merged": "/m"}
    messages = [e.message for e in reversed((await svc.events(job.id, limit=50)).items)]
    assert (
        messages[0] == "Created the fine-tuning job" and messages[-1] == "The job has successfully completed"
    )
    assert any(m.startswith("Step 2/2: loss=1") for m in messages)
    assert any("Validation loss 1.0000 (perplexity 2.72)" in m for m in messages)
    assert "no CUDA" in messages
    await svc.aclose()


async def test_too_few_examples_fail_the_job_at_once_with_the_counts() -> None:
    svc = service()
    tiny = (line("q", "a long enough answer") + "\n" + line("q", "a long enough answer")).encode()
    file = await svc.upload_file(tiny, filename="dup.jsonl")
    job = await svc.create_job(spec(file.id))
    assert job.status is JobStatus.FAILED
    assert job.error is not None and "only 1 of 2" in job.error and "duplicate 1" in job.error


async def test_unknown_models_and_files_are_refused() -> None:
    svc = service()
    with pytest.raises(NotFound, match="cannot be fine-tuned"):
        await svc.create_job(spec("file-x", base_model="big"))
    with pytest.raises(NotFound, match="No file"):
        await svc.create_job(spec("file-x"))
    with pytest.raises(InvalidRequest, match="suffix"):
        file = await svc.upload_file(GOOD, filename="t.jsonl")
        await svc.create_job(spec(file.id, suffix="no spaces!"))


async def test_the_gate_keeps_a_model_that_does_not_beat_the_base_unregistered() -> None:
    svc = service(ScriptedRunner(eval_loss=2.5, base_eval_loss=2.0))
    await svc.start()
    file = await svc.upload_file(GOOD, filename="t.jsonl")
    job = await settled(svc, (await svc.create_job(spec(file.id, register=RegisterPolicy.IF_BETTER))).id)
    assert job.status is JobStatus.SUCCEEDED and job.fine_tuned_model is None
    assert any("does not beat the base" in e.message for e in (await svc.events(job.id, limit=50)).items)
    await svc.aclose()


async def test_a_failing_worker_fails_the_job_and_the_next_one_still_runs() -> None:
    runner = ScriptedRunner(fail="out of memory")
    svc = service(runner)
    await svc.start()
    file = await svc.upload_file(GOOD, filename="t.jsonl")
    first = await settled(svc, (await svc.create_job(spec(file.id))).id)
    assert first.status is JobStatus.FAILED and first.error == "out of memory"
    runner.fail = None
    second = await settled(svc, (await svc.create_job(spec(file.id))).id)
    assert second.status is JobStatus.SUCCEEDED
    await svc.aclose()


async def test_cancel_a_queued_and_a_running_job() -> None:
    runner = ScriptedRunner()
    runner.gate.clear()  # the first job waits inside its first step
    svc = service(runner)
    await svc.start()
    file = await svc.upload_file(GOOD, filename="t.jsonl")
    running = await svc.create_job(spec(file.id))
    waiting = await svc.create_job(spec(file.id))
    for _ in range(100):
        if (await svc.get_job(running.id)).status is JobStatus.RUNNING:
            break
        await asyncio.sleep(0.01)
    assert (await svc.cancel_job(waiting.id)).status is JobStatus.CANCELLED  # one at a time: still queued
    await svc.cancel_job(running.id)
    assert (await settled(svc, running.id)).status is JobStatus.CANCELLED
    assert runner.runs == [running.id]
    with pytest.raises(InvalidRequest, match="already cancelled"):
        await svc.cancel_job(running.id)
    await svc.aclose()


async def test_a_job_running_at_start_up_was_interrupted_and_resumes() -> None:
    store = InMemoryTrainingJobStore()
    runner = ScriptedRunner()
    first = service(runner, store)
    file = await first.upload_file(GOOD, filename="t.jsonl")
    job = await first.create_job(spec(file.id))
    await store.update(replace(job, status=JobStatus.RUNNING, attempts=1))  # the server died here
    again = TrainingService(store, runner, Blobs(), no_conversations)
    await again.start()
    done = await settled(again, job.id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2
    assert any(
        "Interrupted by a server restart" in e.message for e in (await again.events(job.id, limit=50)).items
    )
    await again.aclose()


async def test_jobs_and_events_come_in_pages_whose_cursor_continues_them() -> None:
    svc = service()  # not started: the jobs stay queued
    file = await svc.upload_file(GOOD, filename="train.jsonl")
    made = [await svc.create_job(spec(file.id)) for _ in range(5)]
    first = await svc.list_jobs(limit=2)
    assert [j.id for j in first.items] == [made[4].id, made[3].id] and first.has_more
    second = await svc.list_jobs(limit=2, cursor=first.next_cursor)
    third = await svc.list_jobs(limit=2, cursor=second.next_cursor)
    assert [j.id for j in (*second.items, *third.items)] == [made[2].id, made[1].id, made[0].id]
    assert third.next_cursor is None and not third.has_more
    exact = await svc.list_jobs(limit=5)
    assert len(exact.items) == 5 and exact.next_cursor is None  # a full last page says there is no more
    events = await svc.events(made[0].id, limit=1)
    rest = await svc.events(made[0].id, limit=50, cursor=events.next_cursor)
    assert events.has_more and rest.items and events.items[0].id not in {e.id for e in rest.items}
    first_file = await svc.list_files(limit=1)
    assert first_file.items == (file,) and first_file.next_cursor is None


def sharing(store: InMemoryTrainingJobStore, runner: ScriptedRunner, lease_s: float) -> TrainingService:
    """A second scheduler on the same store (another core process, or a local `mindfu train`)."""
    return TrainingService(store, runner, Blobs(), no_conversations, lease_s=lease_s)


async def test_schedulers_sharing_a_store_run_each_job_once() -> None:
    store, runner = InMemoryTrainingJobStore(), ScriptedRunner()
    first, second = sharing(store, runner, 5.0), sharing(store, runner, 5.0)
    file = await first.upload_file(GOOD, filename="t.jsonl")
    jobs = [await first.create_job(spec(file.id)) for _ in range(3)]
    await asyncio.gather(first.start(), second.start())
    finished = [await settled(first, j.id) for j in jobs]
    assert [j.status for j in finished] == [JobStatus.SUCCEEDED] * 3
    assert sorted(runner.runs) == sorted(j.id for j in jobs)  # each ran once, whichever scheduler took it
    await asyncio.gather(first.aclose(), second.aclose())


async def test_a_job_cancelled_through_another_process_stops_where_it_runs() -> None:
    store, runner = InMemoryTrainingJobStore(), ScriptedRunner()
    runner.gate.clear()  # the job holds after its first step
    owner, other = sharing(store, runner, 0.3), sharing(store, runner, 0.3)
    file = await owner.upload_file(GOOD, filename="t.jsonl")
    job = await owner.create_job(spec(file.id))
    await owner.start()
    while (await other.get_job(job.id)).progress.step < 1:
        await asyncio.sleep(0.01)
    cancelled = await other.cancel_job(job.id)  # `other` does not run it: the record says cancelled now
    assert cancelled.status is JobStatus.CANCELLED
    for _ in range(200):  # the owner finds its lease gone at its next renewal and stops the worker
        if job.id in runner.cancelled:
            break
        await asyncio.sleep(0.01)
    assert job.id in runner.cancelled
    await asyncio.sleep(0.1)
    assert (await other.get_job(job.id)).status is JobStatus.CANCELLED  # the owner wrote nothing over it
    await owner.aclose()


async def test_a_job_whose_scheduler_died_is_resumed_once_its_lease_runs_out() -> None:
    store, runner = InMemoryTrainingJobStore(), ScriptedRunner()
    survivor = sharing(store, runner, 0.3)
    file = await survivor.upload_file(GOOD, filename="t.jsonl")
    job = await survivor.create_job(spec(file.id))
    assert await store.claim(job.id, "a process that died", datetime.now(UTC) + timedelta(seconds=0.5))
    await survivor.start()
    assert (await survivor.get_job(job.id)).status is JobStatus.RUNNING  # its lease still holds
    assert runner.runs == []
    done = await settled_within(survivor, job.id, 5.0)
    assert done.status is JobStatus.SUCCEEDED and runner.runs == [job.id]
    messages = [e.message for e in (await survivor.events(job.id, limit=50)).items]
    assert any("Interrupted by a server restart" in m for m in messages)
    await survivor.aclose()


async def settled_within(svc: TrainingService, job_id: str, seconds: float) -> TrainingJob:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        job = await svc.get_job(job_id)
        if job.status.finished:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish within {seconds} s: {await svc.get_job(job_id)}")
