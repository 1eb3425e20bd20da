"""Training jobs and their events."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from google.protobuf.message import Message

from mindfu_core.domain.conversations import CompletionStatus
from mindfu_core.domain.training import (
    Checkpoint,
    DatasetStats,
    DataSource,
    Hyperparameters,
    JobEvent,
    JobSpec,
    JobStatus,
    Progress,
    QualityPolicy,
    RegisterPolicy,
    SplitPolicy,
    TrainingFile,
    TrainingJob,
    TrainingOutcome,
)
from mindfu_core.errors import InvalidRequest
from mindfu_grpc._pb.mindfu.v1 import training_pb2 as pb
from mindfu_grpc.mapping.common import from_timestamp, json_object, json_text, optional, timestamp

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


_STATUS_BACK = {value: key for key, value in _STATUS.items()}
_SOURCE_BACK = {value: key for key, value in _SOURCE.items()}
_REGISTER_OUT = {
    RegisterPolicy.ALWAYS: pb.REGISTER_POLICY_ALWAYS,
    RegisterPolicy.IF_BETTER: pb.REGISTER_POLICY_IF_BETTER,
    RegisterPolicy.NEVER: pb.REGISTER_POLICY_NEVER,
}
_HYPERPARAMETERS = tuple(f.name for f in fields(Hyperparameters))
_QUALITY = tuple(f.name for f in fields(QualityPolicy) if f.name != "statuses")
_SPLIT = ("validation_fraction", "seed")


def _set(message: Any, values: Any, names: tuple[str, ...]) -> Any:
    """Copy the fields ``names`` of a dataclass onto a message (``None`` stays unset)."""
    for name in names:
        value = getattr(values, name)
        if value is not None:
            setattr(message, name, value)
    return message


def _given(message: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The fields ``names`` that are set on ``message``."""
    return {name: getattr(message, name) for name in names if message.HasField(name)}


def _quality_from_pb(message: pb.QualityPolicy, base: QualityPolicy) -> QualityPolicy:
    changes = _given(message, _QUALITY)
    if message.statuses:
        try:
            changes["statuses"] = tuple(CompletionStatus(value) for value in message.statuses)
        except ValueError as exc:
            raise InvalidRequest(f"quality.statuses: {exc}", param="quality.statuses") from exc
    found: QualityPolicy = replace(base, **changes)
    return found


def _quality_to_pb(quality: QualityPolicy) -> pb.QualityPolicy:
    message: pb.QualityPolicy = _set(pb.QualityPolicy(), quality, _QUALITY)
    message.statuses.extend(status.value for status in quality.statuses)
    return message


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
    changes: dict[str, Any] = {}
    for name in ("epochs", "max_steps", "learning_rate", "lora_r", "load_in_4bit"):
        value = optional(request, name)
        if value is not None:
            changes[name] = value
    changes.update(_given(request.hyperparameters, _HYPERPARAMETERS))
    quality = QualityPolicy()
    if request.HasField("min_turns"):
        quality = QualityPolicy(min_turns=request.min_turns)
    quality = _quality_from_pb(request.quality, quality)
    split = replace(SplitPolicy(), **_given(request.split, _SPLIT))
    return JobSpec(
        base_model=request.model,
        source=source,
        training_file=request.training_file or None,
        validation_file=request.validation_file or None,
        since=from_timestamp(request.since) if request.HasField("since") else None,
        quality=quality,
        split=split,
        hyperparameters=replace(Hyperparameters(), **changes),
        suffix=request.suffix or None,
        experiment=request.experiment or experiment,
        register=register,
    )


def spec_to_pb(spec: JobSpec) -> pb.CreateJobRequest:
    """The request that creates a job of ``spec`` (a gateway's, on behalf of its HTTP client)."""
    request = pb.CreateJobRequest(
        model=spec.base_model,
        source=_SOURCE[spec.source],
        training_file=spec.training_file or "",
        validation_file=spec.validation_file or "",
        suffix=spec.suffix or "",
        register=_REGISTER_OUT[spec.register],
        experiment=spec.experiment,
        hyperparameters=_set(pb.Hyperparameters(), spec.hyperparameters, _HYPERPARAMETERS),
        quality=_quality_to_pb(spec.quality),
        split=_set(pb.SplitPolicy(), spec.split, _SPLIT),
    )
    if spec.since is not None:
        request.since.CopyFrom(timestamp(spec.since))
    return request


M = TypeVar("M", bound=Message)

#: What a job's ``JobSettings`` shares with the ``CreateJobRequest`` that made it (same names and types).
_SETTINGS = (
    "training_file", "validation_file", "suffix", "register", "experiment",
    "hyperparameters", "quality", "split", "since",
)  # fmt: skip


def _copy(source: Message, target: M, names: tuple[str, ...]) -> M:
    """Copy the fields ``names`` from one message to another (message fields only where set)."""
    for name in names:
        value = getattr(source, name)
        if isinstance(value, Message):
            if source.HasField(name):
                getattr(target, name).CopyFrom(value)
        else:
            setattr(target, name, value)
    return target


def _settings_to_pb(spec: JobSpec) -> pb.JobSettings:
    return _copy(spec_to_pb(spec), pb.JobSettings(), _SETTINGS)


def _spec_from_job_pb(job: pb.TrainingJob) -> JobSpec:
    request = pb.CreateJobRequest(model=job.base_model, source=job.source)
    return spec_from_pb(_copy(job.settings, request, _SETTINGS), job.settings.experiment)


def job_to_pb(job: TrainingJob) -> pb.TrainingJob:
    progress = job.progress
    out = pb.TrainingJob(
        id=job.id,
        status=_STATUS[job.status],
        base_model=job.spec.base_model,
        source=_SOURCE[job.spec.source],
        created_at=timestamp(job.created_at),
        progress=pb.JobProgress(step=progress.step, total_steps=progress.total_steps, epoch=progress.epoch),
        mlflow_run_id=job.tracking_run_id or "",
        fine_tuned_model=job.fine_tuned_model or "",
        artifacts=dict(job.artifacts),
        error=job.error or "",
        attempts=job.attempts,
        settings=_settings_to_pb(job.spec),
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
                characters=job.stats.characters,
            )
        )
        if job.stats.tokens is not None:
            out.dataset.tokens = job.stats.tokens
    if job.outcome is not None:
        evaluation = pb.Evaluation()
        for name in ("eval_loss", "base_eval_loss", "train_loss"):
            value = getattr(job.outcome, name)
            if value is not None:
                setattr(evaluation, name, value)
        out.evaluation.CopyFrom(evaluation)
        out.notes.extend(job.outcome.notes)
        out.trained_steps = job.outcome.steps
        out.adapter_dir = job.outcome.adapter_dir
        if job.outcome.tokens is not None:
            out.trained_tokens = job.outcome.tokens
    return out


def job_from_pb(message: pb.TrainingJob) -> TrainingJob:
    """A job as a gateway's HTTP API describes it (the core's record, through gRPC)."""
    status = _STATUS_BACK.get(message.status)
    if status is None:
        raise InvalidRequest(f"the core sent a job with an unknown status ({message.status})")
    progress = message.progress
    stats = None
    if message.HasField("dataset"):
        data = message.dataset
        stats = DatasetStats(
            seen=data.seen,
            kept=data.kept,
            dropped=dict(data.dropped),
            train=data.train,
            validation=data.validation,
            characters=data.characters,
            tokens=optional(data, "tokens"),
        )
    outcome = None
    if message.HasField("evaluation"):
        evaluation = message.evaluation
        outcome = TrainingOutcome(
            adapter_dir=message.adapter_dir,
            steps=message.trained_steps,
            train_loss=optional(evaluation, "train_loss"),
            eval_loss=optional(evaluation, "eval_loss"),
            base_eval_loss=optional(evaluation, "base_eval_loss"),
            tokens=optional(message, "trained_tokens"),
            notes=tuple(message.notes),
        )
    return TrainingJob(
        id=message.id,
        spec=_spec_from_job_pb(message),
        status=status,
        created_at=from_timestamp(message.created_at),
        started_at=from_timestamp(message.started_at) if message.HasField("started_at") else None,
        finished_at=from_timestamp(message.finished_at) if message.HasField("finished_at") else None,
        progress=Progress(
            step=progress.step,
            total_steps=progress.total_steps,
            epoch=progress.epoch,
            **{
                name: optional(progress, name)
                for name in ("loss", "eval_loss", "learning_rate", "tokens_per_s", "eta_s")
            },
        ),
        stats=stats,
        outcome=outcome,
        tracking_run_id=message.mlflow_run_id or None,
        fine_tuned_model=message.fine_tuned_model or None,
        artifacts=dict(message.artifacts),
        error=message.error or None,
        attempts=message.attempts,
    )


def event_to_pb(event: JobEvent) -> pb.JobEvent:
    return pb.JobEvent(
        id=event.id,
        created_at=timestamp(event.created_at),
        level=event.level,
        message=event.message,
        data_json=json_text(event.data),
    )


def event_from_pb(message: pb.JobEvent, job_id: str) -> JobEvent:
    return JobEvent(
        id=message.id,
        job_id=job_id,
        created_at=from_timestamp(message.created_at),
        level=message.level,
        message=message.message,
        data=json_object(message.data_json, "data_json"),
    )


def file_to_pb(file: TrainingFile) -> pb.TrainingFile:
    return pb.TrainingFile(
        id=file.id,
        filename=file.filename,
        bytes=file.bytes,
        examples=file.examples,
        sha256=file.sha256,
        created_at=timestamp(file.created_at),
        purpose=file.purpose,
    )


def file_from_pb(message: pb.TrainingFile) -> TrainingFile:
    return TrainingFile(
        id=message.id,
        filename=message.filename,
        bytes=message.bytes,
        examples=message.examples,
        sha256=message.sha256,
        created_at=from_timestamp(message.created_at),
        purpose=message.purpose,
    )


def checkpoint_to_pb(checkpoint: Checkpoint) -> pb.Checkpoint:
    metrics = {
        key: float(value)
        for key, value in checkpoint.metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    return pb.Checkpoint(step=checkpoint.step, path=checkpoint.path, metrics=metrics)


def checkpoint_from_pb(message: pb.Checkpoint) -> Checkpoint:
    return Checkpoint(step=message.step, path=message.path, metrics=dict(message.metrics))
