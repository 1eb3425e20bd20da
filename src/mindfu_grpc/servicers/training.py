"""mindfu.v1.TrainingService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from mindfu_core.application import Application, TrainingApi
from mindfu_core.errors import InvalidRequest
from mindfu_grpc._pb.mindfu.v1 import training_pb2 as pb
from mindfu_grpc._pb.mindfu.v1 import training_pb2_grpc
from mindfu_grpc.auth import caller
from mindfu_grpc.mapping import training as mapping
from mindfu_grpc.servicers.documents import display_name, read_upload

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 20
DEFAULT_FILES = 100
#: How often a watch looks at the job (progress changes every optimizer step at most).
WATCH_POLL_S = 0.5


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    """Fine-tuning jobs; ``WatchJob`` streams a job's changes until it finishes."""

    def __init__(self, application: Application, *, experiment: str, max_file_bytes: int) -> None:
        self._app = application
        self._experiment = experiment
        self._max_file_bytes = max_file_bytes

    def _service(self) -> TrainingApi:
        return self._app.training

    async def CreateJob(self, request: pb.CreateJobRequest, context: Context) -> pb.CreateJobResponse:
        job = await self._service().create_job(
            mapping.spec_from_pb(request, self._experiment), tenant=caller().tenant
        )
        return pb.CreateJobResponse(job=mapping.job_to_pb(job))

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        return pb.GetJobResponse(
            job=mapping.job_to_pb(await self._service().get_job(request.id, tenant=caller().tenant))
        )

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        page = await self._service().list_jobs(
            limit=request.limit or DEFAULT_PAGE, cursor=request.after or None, tenant=caller().tenant
        )
        jobs = [mapping.job_to_pb(j) for j in page.items]
        return pb.ListJobsResponse(jobs=jobs, next_cursor=page.next_cursor or "")

    async def CancelJob(self, request: pb.CancelJobRequest, context: Context) -> pb.CancelJobResponse:
        return pb.CancelJobResponse(
            job=mapping.job_to_pb(await self._service().cancel_job(request.id, tenant=caller().tenant))
        )

    async def ListJobEvents(
        self, request: pb.ListJobEventsRequest, context: Context
    ) -> pb.ListJobEventsResponse:
        page = await self._service().events(
            request.id,
            limit=request.limit or DEFAULT_PAGE,
            cursor=request.after or None,
            tenant=caller().tenant,
        )
        events = [mapping.event_to_pb(e) for e in page.items]
        return pb.ListJobEventsResponse(events=events, next_cursor=page.next_cursor or "")

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobResponse]:
        service, tenant = self._service(), caller().tenant
        last = None
        while True:
            job = await service.get_job(request.id, tenant=tenant)
            seen = (job.status, job.progress, job.fine_tuned_model, job.error)
            if seen != last:
                last = seen
                yield pb.WatchJobResponse(job=mapping.job_to_pb(job))
            if job.status.finished:
                return
            await asyncio.sleep(WATCH_POLL_S)

    async def ListCheckpoints(
        self, request: pb.ListCheckpointsRequest, context: Context
    ) -> pb.ListCheckpointsResponse:
        found = await self._service().checkpoints(request.id, tenant=caller().tenant)
        return pb.ListCheckpointsResponse(checkpoints=[mapping.checkpoint_to_pb(c) for c in found])

    async def UploadFile(
        self, request_iterator: AsyncIterator[pb.UploadFileRequest], context: Context
    ) -> pb.UploadFileResponse:
        service = self._service()
        info, data = await read_upload(request_iterator, data="chunk", limit=self._max_file_bytes)
        stored = await service.upload_file(
            data,
            filename=display_name(info.filename, "train.jsonl"),
            purpose=info.purpose or "fine-tune",
            tenant=caller().tenant,
        )
        return pb.UploadFileResponse(file=mapping.file_to_pb(stored))

    async def GetFile(self, request: pb.GetFileRequest, context: Context) -> pb.GetFileResponse:
        return pb.GetFileResponse(
            file=mapping.file_to_pb(await self._service().get_file(request.id, tenant=caller().tenant))
        )

    async def ListFiles(self, request: pb.ListFilesRequest, context: Context) -> pb.ListFilesResponse:
        if not 0 <= request.limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000", param="limit")
        page = await self._service().list_files(
            limit=request.limit or DEFAULT_FILES, cursor=request.after or None, tenant=caller().tenant
        )
        files = [mapping.file_to_pb(f) for f in page.items]
        return pb.ListFilesResponse(files=files, next_cursor=page.next_cursor or "")

    async def DeleteFile(self, request: pb.DeleteFileRequest, context: Context) -> pb.DeleteFileResponse:
        return pb.DeleteFileResponse(
            file=mapping.file_to_pb(await self._service().delete_file(request.id, tenant=caller().tenant))
        )
