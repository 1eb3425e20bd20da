"""Training jobs and their events."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mindfu_core.domain.training import (
    DataSource,
    Hyperparameters,
    JobEvent,
    JobSpec,
    JobStatus,
    QualityPolicy,
    RegisterPolicy,
    TrainingJob,
)
from mindfu_core.errors import InvalidRequest
from mindfu_grpc._pb.mindfu.v1 import training_pb2 as pb
from mindfu_grpc.mapping.common import optional, timestamp

_STATUS = {
    JobStatus.QUEUED: pb.JOB_STATUS_QUEUED,
    JobStatus.RUNNING: pb.JOB_STATUS_RUNNING,
    JobStatus.SUCCEEDED: pb.JOB_STATUS_SUCCEEDED,
    JobStatus.FAILED: pb.JOB_STATUS_FAILED,
    JobStatus.CANCELLED: pb.JOB_STATUS_CANCELLED,
}
_SOURCE = {DataSource.FILE: pb.DATA_SOURCE_FILE, DataSource.CONVERSATIONS: pb.DATA_SOURCE_CONVERSATIONS}
_REGISTER = {
    pb.REGISTER_POLICY_UNSPECIFIED: RegisterPolicy.ALWAYS,
    pb.REGISTER_POLICY_ALWAYS: RegisterPolicy.ALWAYS,
    pb.REGISTER_POLICY_IF_BETTER: RegisterPolicy.IF_BETTER,
    pb.REGISTER_POLICY_NEVER: RegisterPolicy.NEVER,
}


def spec_from_pb(request: pb.CreateJobRequest, experiment: str) -> JobSpec:
    if not request.model:
        raise InvalidRequest("model is required", param="model")
    if request.source == pb.DATA_SOURCE_FILE or (
        request.source == pb.DATA_SOURCE_UNSPECIFIED and request.training_file
    ):
        source = DataSource.FILE
    elif request.source in (pb.DATA_SOURCE_CONVERSATIONS, pb.DATA_SOURCE_UNSPECIFIED):
        source = DataSource.CONVERSATIONS
    else:
        raise InvalidRequest("source is not a known data source", param="source")
    register = _REGISTER.get(request.register)
    if register is None:
        raise InvalidRequest("register is not a known policy", param="register")
    hp = Hyperparameters()
    changes: dict[str, Any] = {}
    for name in ("epochs", "max_steps", "learning_rate", "lora_r", "load_in_4bit"):
        value = optional(request, name)
        if value is not None:
            changes[name] = value
    quality = QualityPolicy()
    if request.HasField("min_turns"):
        quality = QualityPolicy(min_turns=request.min_turns)
    return JobSpec(
        base_model=request.model,
        source=source,
        training_file=request.training_file or None,
        validation_file=request.validation_file or None,
        quality=quality,
        hyperparameters=replace(hp, **changes),
        suffix=request.suffix or None,
        experiment=request.experiment or experiment,
        register=register,
    )


def job_to_pb(job: TrainingJob) -> pb.TrainingJob:
    progress = job.progress
    out = pb.TrainingJob(
        id=job.id,
        status=_STATUS[job.status],
        base_model=job.spec.base_model,
        source=_SOURCE[job.spec.source],
        created_at=timestamp(job.created_at),
        progress=pb.JobProgress(step=progress.step, total_steps=progress.total_steps, epoch=progress.epoch),
        mlflow_run_id=job.mlflow_run_id or "",
        fine_tuned_model=job.fine_tuned_model or "",
        artifacts=dict(job.artifacts),
        error=job.error or "",
        attempts=job.attempts,
    )
    for name in ("loss", "eval_loss", "learning_rate", "tokens_per_s", "eta_s"):
        value = getattr(progress, name)
        if value is not None:
            setattr(out.progress, name, value)
    if job.started_at is not None:
        out.started_at.CopyFrom(timestamp(job.started_at))
    if job.finished_at is not None:
        out.finished_at.CopyFrom(timestamp(job.finished_at))
    if job.stats is not None:
        out.dataset.CopyFrom(
            pb.DatasetStats(
                seen=job.stats.seen,
                kept=job.stats.kept,
                dropped=dict(job.stats.dropped),
                train=job.stats.train,
                validation=job.stats.validation,
            )
        )
    if job.outcome is not None:
        evaluation = pb.Evaluation()
        for name in ("eval_loss", "base_eval_loss", "train_loss"):
            value = getattr(job.outcome, name)
            if value is not None:
                setattr(evaluation, name, value)
        out.evaluation.CopyFrom(evaluation)
        out.notes.extend(job.outcome.notes)
    return out


def event_to_pb(event: JobEvent) -> pb.JobEvent:
    return pb.JobEvent(
        id=event.id, created_at=timestamp(event.created_at), level=event.level, message=event.message
    )
