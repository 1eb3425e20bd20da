"""mindfu.v1.TrainingService through a real server: a job on the logged conversations created, watched as
a stream until it succeeds (a real worker training a tiny Llama), listed, its events read; errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import grpc
from mindfu_grpc._pb.mindfu.v1 import chat_pb2, training_pb2, training_pb2_grpc
from tests.fakes import Reply, ScriptedEngine
from tests.fixtures.tiny_llama import write_tiny_llama
from tests.grpc.conftest import CoreFactory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


async def test_create_watch_list_and_events(make_core: CoreFactory, tiny: Path) -> None:
    engine = ScriptedEngine([Reply(text=f"Reply number {i} says {i * 11}.") for i in range(12)])
    async with make_core(
        engine, training={"base_models": {"scripted": str(tiny)}, "export_gguf": None}
    ) as core:
        for i in range(12):
            question = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, content=f"Tell me reply number {i}")
            await core.chat.Complete(chat_pb2.CompleteRequest(model="scripted", messages=[question]))
        stub: training_pb2_grpc.TrainingServiceAsyncStub = training_pb2_grpc.TrainingServiceStub(core.channel)  # type: ignore[assignment]
        few = await stub.CreateJob(training_pb2.CreateJobRequest(model="scripted", min_turns=3))
        assert few.job.status == training_pb2.JOB_STATUS_FAILED and "too_few_turns 12" in few.job.error
        created = await stub.CreateJob(
            training_pb2.CreateJobRequest(model="scripted", max_steps=4, suffix="grpc", load_in_4bit=False)
        )
        job = created.job
        assert job.status == training_pb2.JOB_STATUS_QUEUED and job.dataset.kept == 12
        assert job.source == training_pb2.DATA_SOURCE_CONVERSATIONS
        seen = [
            piece.job async for piece in stub.WatchJob(training_pb2.WatchJobRequest(id=job.id), timeout=240)
        ]
        final = seen[-1]
        assert final.status == training_pb2.JOB_STATUS_SUCCEEDED, final.error
        assert final.fine_tuned_model == f"ft:scripted:grpc:{job.id}" and final.progress.step == 4
        assert final.evaluation.HasField("eval_loss") and set(final.artifacts) == {
            "adapter",
            "lora_gguf",
            "merged",
            "vllm",
        }
        steps = [j.progress.step for j in seen]
        assert steps == sorted(steps) and training_pb2.JOB_STATUS_RUNNING in [j.status for j in seen]
        listed = await stub.ListJobs(training_pb2.ListJobsRequest())
        assert [j.id for j in listed.jobs] == [job.id, few.job.id]
        events = await stub.ListJobEvents(training_pb2.ListJobEventsRequest(id=job.id, limit=100))
        assert events.events[0].message == "The job has successfully completed"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CancelJob(training_pb2.CancelJobRequest(id=job.id))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        for call, code in (
            (stub.GetJob(training_pb2.GetJobRequest(id="ftjob-nope")), grpc.StatusCode.NOT_FOUND),
            (stub.CreateJob(training_pb2.CreateJobRequest(model="other")), grpc.StatusCode.NOT_FOUND),
            (stub.CreateJob(training_pb2.CreateJobRequest()), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await call
            assert failed.value.code() is code


async def test_training_files_are_uploaded_in_chunks_listed_and_deleted(
    make_core: CoreFactory, tiny: Path
) -> None:
    async with make_core(training={"base_models": {"scripted": str(tiny)}, "max_file_bytes": 4096}) as core:
        stub: training_pb2_grpc.TrainingServiceAsyncStub = training_pb2_grpc.TrainingServiceStub(core.channel)  # type: ignore[assignment]
        line = (
            b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
        )

        async def upload(*parts: training_pb2.UploadFileRequest) -> training_pb2.UploadFileResponse:
            async def messages() -> AsyncIterator[training_pb2.UploadFileRequest]:
                for part in parts:
                    yield part

            return await stub.UploadFile(messages())

        info = training_pb2.UploadFileRequest(info=training_pb2.UploadFileInfo(filename="../train.jsonl"))
        body = line * 5
        stored = await upload(
            info, *(training_pb2.UploadFileRequest(chunk=body[i : i + 50]) for i in range(0, len(body), 50))
        )
        assert stored.file.examples == 5 and stored.file.bytes == len(body)
        assert stored.file.filename == "train.jsonl" and stored.file.purpose == "fine-tune"
        listed = await stub.ListFiles(training_pb2.ListFilesRequest())
        assert [f.id for f in listed.files] == [stored.file.id]
        assert (await stub.GetFile(training_pb2.GetFileRequest(id=stored.file.id))).file == stored.file
        with pytest.raises(grpc.aio.AioRpcError) as no_job:
            await stub.ListCheckpoints(training_pb2.ListCheckpointsRequest(id="ftjob-nope"))
        assert no_job.value.code() is grpc.StatusCode.NOT_FOUND
        for parts, code, words in (
            ((training_pb2.UploadFileRequest(chunk=line),), grpc.StatusCode.INVALID_ARGUMENT, "info"),
            ((info, info), grpc.StatusCode.INVALID_ARGUMENT, "only the first"),
            (
                (info, training_pb2.UploadFileRequest(chunk=line + b"{oops\n")),
                grpc.StatusCode.INVALID_ARGUMENT,
                "line 2",
            ),
            (
                (info, training_pb2.UploadFileRequest(chunk=line * 60)),
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "4096",
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await upload(*parts)
            assert failed.value.code() is code and words in (failed.value.details() or ""), failed.value
        deleted = await stub.DeleteFile(training_pb2.DeleteFileRequest(id=stored.file.id))
        assert deleted.file.id == stored.file.id
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetFile(training_pb2.GetFileRequest(id=stored.file.id))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
