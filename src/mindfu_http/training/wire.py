"""Request models and response objects of the fine-tuning API, in OpenAI's shapes (MindFu's extras under
``"mindfu"``)."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mindfu_core.domain.conversations import CompletionStatus
from mindfu_core.domain.training import (
    Checkpoint,
    DataSource,
    Hyperparameters,
    JobEvent,
    JobSpec,
    QualityPolicy,
    RegisterPolicy,
    SplitPolicy,
    TrainingFile,
    TrainingJob,
)
from mindfu_http.responses import CheckpointObject, EventObject, FileObject, JobObject

#: OpenAI's learning_rate_multiplier scales this.
BASE_LEARNING_RATE = 2e-4


class QualityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_turns: int | None = Field(default=None, ge=0)
    min_response_chars: int | None = Field(default=None, ge=0)
    max_response_chars: int | None = Field(default=None, ge=1)
    statuses: list[CompletionStatus] | None = None
    min_rating: int | None = None
    rated_only: bool | None = None
    deduplicate: bool | None = None
    min_examples: int | None = Field(default=None, ge=1)


class MindfuJobIn(BaseModel):
    """MindFu's options: the data source, the quality filter, QLoRA settings, the evaluation gate."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: DataSource | None = None
    since: datetime | None = None
    quality: QualityIn | None = None
    validation_fraction: float | None = Field(default=None, ge=0.0, lt=1.0)
    max_steps: int | None = Field(default=None, ge=1)
    learning_rate: float | None = Field(default=None, gt=0)
    gradient_accumulation: int | None = Field(default=None, ge=1)
    max_seq_length: int | None = Field(default=None, ge=16)
    lora_r: int | None = Field(default=None, ge=1)
    lora_alpha: int | None = Field(default=None, ge=1)
    lora_dropout: float | None = Field(default=None, ge=0.0, lt=1.0)
    load_in_4bit: bool | None = None
    optimizer: str | None = None
    logging_steps: int | None = Field(default=None, ge=1)
    save_steps: int | None = Field(default=None, ge=1)
    register_model: RegisterPolicy | None = Field(default=None, alias="register")
    experiment: str | None = None
    epochs: float | None = Field(default=None, gt=0, description="fractional epochs (n_epochs is whole)")
    warmup_ratio: float | None = Field(default=None, ge=0.0, lt=1.0)
    eval_steps: int | None = Field(default=None, ge=1)
    double_quant: bool | None = None
    compute_dtype: str | None = None
    gradient_checkpointing: bool | None = None
    split_seed: int | None = Field(
        default=None, description="the train/validation split's seed (default: seed)"
    )


class HyperparametersIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    n_epochs: int | Literal["auto"] | None = None
    batch_size: int | Literal["auto"] | None = None
    learning_rate_multiplier: float | Literal["auto"] | None = None


class JobIn(BaseModel):
    """``POST /v1/fine_tuning/jobs``."""

    model_config = ConfigDict(extra="allow")
    model: str
    training_file: str | None = None
    validation_file: str | None = None
    hyperparameters: HyperparametersIn | None = None
    suffix: str | None = Field(default=None, max_length=64)
    seed: int | None = None
    mindfu: MindfuJobIn | None = None

    def to_spec(self, experiment: str) -> JobSpec:
        extra = self.mindfu or MindfuJobIn()
        given = self.hyperparameters or HyperparametersIn()
        hp = Hyperparameters()
        changes: dict[str, Any] = {}
        if isinstance(given.n_epochs, int):
            changes["epochs"] = float(given.n_epochs)
        if isinstance(given.batch_size, int):
            changes["batch_size"] = given.batch_size
        if isinstance(given.learning_rate_multiplier, float | int):
            changes["learning_rate"] = BASE_LEARNING_RATE * float(given.learning_rate_multiplier)
        if self.seed is not None:
            changes["seed"] = self.seed
        for name in (
            "max_steps", "learning_rate", "gradient_accumulation", "max_seq_length", "lora_r", "lora_alpha",
            "lora_dropout", "load_in_4bit", "optimizer", "logging_steps", "save_steps", "epochs",
            "warmup_ratio", "eval_steps", "double_quant", "compute_dtype", "gradient_checkpointing",
        ):  # fmt: skip
            value = getattr(extra, name)
            if value is not None:
                changes[name] = value
        quality = QualityPolicy()
        if extra.quality is not None:
            set_fields = {k: v for k, v in extra.quality.model_dump().items() if v is not None}
            if "statuses" in set_fields:
                set_fields["statuses"] = tuple(set_fields["statuses"])
            quality = replace(quality, **set_fields)
        seed = extra.split_seed if extra.split_seed is not None else self.seed
        split = SplitPolicy(seed=seed if seed is not None else SplitPolicy().seed)
        if extra.validation_fraction is not None:
            split = replace(split, validation_fraction=extra.validation_fraction)
        source = extra.source or (DataSource.FILE if self.training_file else DataSource.CONVERSATIONS)
        since = extra.since.replace(tzinfo=UTC) if extra.since and extra.since.tzinfo is None else extra.since
        return JobSpec(
            base_model=self.model,
            source=source,
            training_file=self.training_file,
            validation_file=self.validation_file,
            since=since,
            quality=quality,
            split=split,
            hyperparameters=replace(hp, **changes),
            suffix=self.suffix,
            experiment=extra.experiment or experiment,
            register=extra.register_model or RegisterPolicy.ALWAYS,
        )


class TrainStartIn(BaseModel):
    """The seed's ``POST /train/start``: train on the logged conversations."""

    model_config = ConfigDict(extra="forbid")
    num_epochs: int = Field(default=3, ge=1)
    experiment_name: str | None = None
    model: str | None = None
    max_steps: int | None = Field(default=None, ge=1)


def _unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def file_object(file: TrainingFile) -> FileObject:
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": _unix(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "status_details": None,
        "mindfu": {"examples": file.examples, "sha256": file.sha256},
    }


def job_object(job: TrainingJob) -> JobObject:
    hp = job.spec.hyperparameters
    hyperparameters = {
        "n_epochs": hp.epochs if not float(hp.epochs).is_integer() else int(hp.epochs),
        "batch_size": hp.batch_size,
        "learning_rate_multiplier": hp.learning_rate / BASE_LEARNING_RATE,
    }
    error = None
    if job.error is not None:
        error = {"code": "training_failed", "message": job.error, "param": None}
    outcome = job.outcome
    return {
        "id": job.id,
        "object": "fine_tuning.job",
        "model": job.spec.base_model,
        "created_at": _unix(job.created_at),
        "finished_at": _unix(job.finished_at),
        "fine_tuned_model": job.fine_tuned_model,
        "organization_id": "mindfu",
        "result_files": [],
        "status": job.status.value,
        "validation_file": job.spec.validation_file,
        "training_file": job.spec.training_file,
        "hyperparameters": hyperparameters,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        "trained_tokens": outcome.tokens if outcome else None,
        "error": error,
        "seed": hp.seed,
        "user_provided_suffix": job.spec.suffix,
        "estimated_finish": None,
        "integrations": [],
        "mindfu": {
            "source": job.spec.source.value,
            "progress": asdict(job.progress),
            "dataset": job.stats.as_dict() if job.stats else None,
            "evaluation": (
                {
                    "eval_loss": outcome.eval_loss,
                    "base_eval_loss": outcome.base_eval_loss,
                    "train_loss": outcome.train_loss,
                }
                if outcome
                else None
            ),
            "notes": list(outcome.notes) if outcome else [],
            "artifacts": dict(job.artifacts),
            "mlflow_run_id": job.tracking_run_id,
            "experiment": job.spec.experiment,
            "register": job.spec.register.value,
            "attempts": job.attempts,
            "hyperparameters": asdict(hp),
            "started_at": _unix(job.started_at),
            "since": job.spec.since.isoformat() if job.spec.since else None,
            "quality": {**asdict(job.spec.quality), "statuses": [s.value for s in job.spec.quality.statuses]},
            "validation_fraction": job.spec.split.validation_fraction,
            "split_seed": job.spec.split.seed,
            "outcome": {"adapter_dir": outcome.adapter_dir, "steps": outcome.steps} if outcome else None,
        },
    }


def event_object(event: JobEvent) -> EventObject:
    data = dict(event.data)
    kind = data.pop("type", "message")
    return {
        "id": event.id,
        "object": "fine_tuning.job.event",
        "created_at": _unix(event.created_at),
        "level": event.level,
        "message": event.message,
        "data": data,
        "type": kind,
    }


def checkpoint_object(job: TrainingJob, checkpoint: Checkpoint) -> CheckpointObject:
    return {
        "id": f"ftckpt-{job.id.removeprefix('ftjob-')}-{checkpoint.step}",
        "object": "fine_tuning.job.checkpoint",
        "created_at": _unix(job.created_at),
        "fine_tuning_job_id": job.id,
        "fine_tuned_model_checkpoint": f"{job.fine_tuned_model or job.id}:ckpt-step-{checkpoint.step}",
        "step_number": checkpoint.step,
        "metrics": dict(checkpoint.metrics),
        "mindfu": {"path": checkpoint.path},
    }
