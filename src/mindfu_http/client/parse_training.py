"""MindFu's fine-tuning objects (files, jobs, events, checkpoints) read back into domain types: the inverse
of ``mindfu_http.training.wire``'s serializers."""

from __future__ import annotations

from datetime import datetime

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
from mindfu_http.client.parse import Json, at, when


def file_of(body: Json) -> TrainingFile:
    extra = body.get("mindfu") or {}
    return TrainingFile(
        id=body["id"],
        filename=body["filename"],
        bytes=int(body["bytes"]),
        examples=int(extra.get("examples", 0)),
        sha256=extra.get("sha256", ""),
        created_at=at(body["created_at"]),
        purpose=body.get("purpose", "fine-tune"),
    )


def _since(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def job_of(body: Json) -> TrainingJob:
    extra = body.get("mindfu") or {}
    quality = dict(extra.get("quality") or {})
    if "statuses" in quality:
        quality["statuses"] = tuple(CompletionStatus(s) for s in quality["statuses"])
    evaluation = extra.get("evaluation")
    outcome_extra = extra.get("outcome")
    outcome = None
    if outcome_extra is not None:
        outcome = TrainingOutcome(
            adapter_dir=outcome_extra["adapter_dir"],
            steps=int(outcome_extra["steps"]),
            train_loss=(evaluation or {}).get("train_loss"),
            eval_loss=(evaluation or {}).get("eval_loss"),
            base_eval_loss=(evaluation or {}).get("base_eval_loss"),
            tokens=body.get("trained_tokens"),
            notes=tuple(extra.get("notes") or ()),
        )
    dataset = extra.get("dataset")
    error = body.get("error")
    spec = JobSpec(
        base_model=body["model"],
        source=DataSource(extra.get("source", "file")),
        training_file=body.get("training_file"),
        validation_file=body.get("validation_file"),
        since=_since(extra.get("since")),
        quality=QualityPolicy(**quality),
        split=SplitPolicy(
            validation_fraction=float(extra.get("validation_fraction", SplitPolicy().validation_fraction)),
            seed=int(extra.get("split_seed", SplitPolicy().seed)),
        ),
        hyperparameters=Hyperparameters(**(extra.get("hyperparameters") or {})),
        suffix=body.get("user_provided_suffix"),
        experiment=extra.get("experiment", "mindfu-finetune"),
        register=RegisterPolicy(extra.get("register", "always")),
    )
    return TrainingJob(
        id=body["id"],
        spec=spec,
        status=JobStatus(body["status"]),
        created_at=at(body["created_at"]),
        started_at=when(extra.get("started_at")),
        finished_at=when(body.get("finished_at")),
        progress=Progress(**(extra.get("progress") or {})),
        stats=DatasetStats(**dataset) if dataset else None,
        outcome=outcome,
        tracking_run_id=extra.get("mlflow_run_id"),
        fine_tuned_model=body.get("fine_tuned_model"),
        artifacts=dict(extra.get("artifacts") or {}),
        error=error.get("message") if isinstance(error, dict) else None,
        attempts=int(extra.get("attempts", 0)),
    )


def event_of(body: Json, job_id: str) -> JobEvent:
    data = dict(body.get("data") or {})
    kind = body.get("type", "message")
    if kind != "message":
        data = {"type": kind, **data}
    return JobEvent(
        id=body["id"],
        job_id=job_id,
        created_at=at(body["created_at"]),
        level=body.get("level", "info"),
        message=body.get("message", ""),
        data=data,
    )


def checkpoint_of(body: Json) -> Checkpoint:
    return Checkpoint(
        step=int(body["step_number"]),
        path=(body.get("mindfu") or {}).get("path", ""),
        metrics=dict(body.get("metrics") or {}),
    )
