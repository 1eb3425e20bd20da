"""Files (``purpose: fine-tune``), fine-tuning jobs, their events and checkpoints; ``/train`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from mindfu_core.application import TrainingApi
from mindfu_core.errors import InvalidRequest, NotFound
from mindfu_http.auth import tenant_of
from mindfu_http.deps import application
from mindfu_http.documents.routes import safe_name
from mindfu_http.responses import (
    CheckpointList,
    EventList,
    FileDeleted,
    FileList,
    FileObject,
    JobList,
    JobObject,
)
from mindfu_http.training.wire import (
    JobIn,
    MindfuJobIn,
    TrainStartIn,
    checkpoint_object,
    event_object,
    file_object,
    job_object,
)

router = APIRouter(tags=["fine-tuning"])
#: Paths whose bodies may be as large as a training file.
UPLOAD_PATHS = ("/v1/files",)


def training(request: Request) -> TrainingApi:
    return application(request).training


def _experiment(request: Request) -> str:
    return str(request.app.state.training_experiment)


@router.post("/v1/files", summary="Upload a training file (JSONL in the chat fine-tuning format)")
async def upload_file(
    request: Request,
    file: Annotated[UploadFile, File(description="The JSONL file")],
    purpose: Annotated[str, Form()] = "fine-tune",
) -> FileObject:
    try:
        data = await file.read()
    finally:
        await file.close()
    stored = await training(request).upload_file(
        data, filename=safe_name(file.filename), purpose=purpose, tenant=await tenant_of(request)
    )
    return file_object(stored)


@router.get("/v1/files", summary="List training files")
async def list_files(request: Request, limit: int = 100, after: str | None = None) -> FileList:
    page = await training(request).list_files(limit=limit, cursor=after, tenant=await tenant_of(request))
    return {
        "object": "list",
        "data": [file_object(f) for f in page.items],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }


@router.get("/v1/files/{file_id}", summary="One training file")
async def get_file(file_id: str, request: Request) -> FileObject:
    return file_object(await training(request).get_file(file_id, tenant=await tenant_of(request)))


@router.delete("/v1/files/{file_id}", summary="Delete a training file")
async def delete_file(file_id: str, request: Request) -> FileDeleted:
    deleted = await training(request).delete_file(file_id, tenant=await tenant_of(request))
    return {"id": deleted.id, "object": "file", "deleted": True, "file": file_object(deleted)}


@router.post(
    "/v1/fine_tuning/jobs", summary="Create a fine-tuning job (from a file or the logged conversations)"
)
async def create_job(body: JobIn, request: Request) -> JobObject:
    return job_object(
        await training(request).create_job(
            body.to_spec(_experiment(request)), tenant=await tenant_of(request)
        )
    )


@router.get("/v1/fine_tuning/jobs", summary="List fine-tuning jobs, newest first")
async def list_jobs(request: Request, limit: int = 20, after: str | None = None) -> JobList:
    page = await training(request).list_jobs(limit=limit, cursor=after, tenant=await tenant_of(request))
    return {
        "object": "list",
        "data": [job_object(j) for j in page.items],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }


@router.get("/v1/fine_tuning/jobs/{job_id}", summary="One fine-tuning job, with its progress")
async def get_job(job_id: str, request: Request) -> JobObject:
    return job_object(await training(request).get_job(job_id, tenant=await tenant_of(request)))


@router.get("/v1/fine_tuning/jobs/{job_id}/events", summary="A job's events, newest first")
async def job_events(job_id: str, request: Request, limit: int = 20, after: str | None = None) -> EventList:
    page = await training(request).events(job_id, limit=limit, cursor=after, tenant=await tenant_of(request))
    return {
        "object": "list",
        "data": [event_object(e) for e in page.items],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel", summary="Cancel a job (it stops after its current step)")
async def cancel_job(job_id: str, request: Request) -> JobObject:
    return job_object(await training(request).cancel_job(job_id, tenant=await tenant_of(request)))


@router.get("/v1/fine_tuning/jobs/{job_id}/checkpoints", summary="A job's saved checkpoints, newest first")
async def job_checkpoints(job_id: str, request: Request) -> CheckpointList:
    service = training(request)
    tenant = await tenant_of(request)
    job = await service.get_job(job_id, tenant=tenant)
    found = await service.checkpoints(job_id, tenant=tenant)
    return {"object": "list", "data": [checkpoint_object(job, c) for c in found], "has_more": False}


@router.post("/train/start", summary="Train on the logged conversations (the seed's route)")
async def train_start(body: TrainStartIn, request: Request) -> JobObject:
    model = body.model or request.app.state.default_model
    if not model:
        raise InvalidRequest("no model to train: name one", param="model")
    job = JobIn(
        model=model,
        hyperparameters={"n_epochs": body.num_epochs},  # type: ignore[arg-type]
        mindfu=MindfuJobIn(experiment=body.experiment_name, max_steps=body.max_steps),
    )
    return job_object(
        await training(request).create_job(job.to_spec(_experiment(request)), tenant=await tenant_of(request))
    )


@router.get("/train/status", summary="The newest fine-tuning job (the seed's route)")
async def train_status(request: Request) -> JobObject:
    newest = (await training(request).list_jobs(limit=1, tenant=await tenant_of(request))).items
    if not newest:
        raise NotFound("no fine-tuning job has been started")
    return job_object(newest[0])
