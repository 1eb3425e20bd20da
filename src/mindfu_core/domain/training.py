"""Fine-tuning types: quality policy, dataset statistics, hyperparameters, jobs and their progress."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mindfu_core.domain.chat import Message
from mindfu_core.domain.conversations import CompletionStatus
from mindfu_core.domain.principals import DEFAULT_TENANT


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityPolicy:
    """Which logged conversations become training examples.

    A conversation is kept when its latest completion ended with one of ``statuses``, it has at least
    ``min_turns`` assistant messages, every assistant message is within the length bounds, and its latest
    rating (if rated) is at least ``min_rating``; ``rated_only`` keeps only rated ones.
    """

    min_turns: int = 1
    min_response_chars: int = 2
    max_response_chars: int = 16_000
    statuses: tuple[CompletionStatus, ...] = (CompletionStatus.OK,)
    min_rating: int | None = 0  # thumbs-down (-1) conversations are dropped; unrated ones are kept
    rated_only: bool = False
    deduplicate: bool = True
    min_examples: int = 2  # fewer after filtering fails the job at once


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitPolicy:
    """A deterministic train/validation split: an example's side depends only on its content and the seed,
    so appending data never moves existing examples."""

    validation_fraction: float = 0.1
    seed: int = 42


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetStats:
    """What preparation kept and dropped, and why."""

    seen: int
    kept: int
    dropped: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    train: int = 0
    validation: int = 0
    characters: int = 0
    tokens: int | None = None  # filled in by the trainer, which has the tokenizer

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "train": self.train,
            "validation": self.validation,
            "characters": self.characters,
            "tokens": self.tokens,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Hyperparameters:
    """QLoRA training settings; the defaults are the production recipe (4-bit NF4, LoRA r16/alpha32 on
    every linear layer, paged AdamW 8-bit, batch 2 x accumulation 8, metrics every 10 steps)."""

    epochs: float = 3.0
    learning_rate: float = 2e-4
    batch_size: int = 2
    gradient_accumulation: int = 8
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_seq_length: int = 2048
    warmup_ratio: float = 0.03
    max_steps: int | None = None  # overrides epochs when set
    logging_steps: int = 10
    save_steps: int = 50
    eval_steps: int | None = None  # default: at the end of each epoch
    load_in_4bit: bool = True
    double_quant: bool = True
    compute_dtype: str = "bfloat16"
    optimizer: str = "paged_adamw_8bit"
    gradient_checkpointing: bool = True
    seed: int = 42


class JobStatus(enum.StrEnum):
    """A training job's state (the OpenAI fine-tuning values)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Where a running job is: optimizer steps done of the total, the latest losses, and time left."""

    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingOutcome:
    """What a finished training run leaves: the adapter, the evaluation, the steps it took."""

    adapter_dir: str
    steps: int
    train_loss: float | None = None
    eval_loss: float | None = None
    base_eval_loss: float | None = None
    tokens: int | None = None
    notes: tuple[str, ...] = ()  # what was changed to run here (no CUDA: no 4-bit, another optimizer, ...)


class DataSource(enum.StrEnum):
    """Where a job's examples come from."""

    FILE = "file"  # an uploaded JSONL in OpenAI's chat fine-tuning format
    CONVERSATIONS = "conversations"  # the logged conversations


class RegisterPolicy(enum.StrEnum):
    """Whether a finished job's model is served."""

    ALWAYS = "always"
    IF_BETTER = "if_better"  # only when its validation loss beats the base model's
    NEVER = "never"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingFile:
    """An uploaded training file (purpose ``fine-tune``), checked line by line when it arrived."""

    id: str
    filename: str
    bytes: int
    examples: int
    sha256: str
    created_at: datetime
    purpose: str = "fine-tune"
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """What a job was asked to do."""

    base_model: str  # a served model id; its trainable weights come from the settings
    source: DataSource
    training_file: str | None = None
    validation_file: str | None = None
    since: datetime | None = None  # conversations updated at or after
    quality: QualityPolicy = field(default_factory=QualityPolicy)
    split: SplitPolicy = field(default_factory=SplitPolicy)
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    suffix: str | None = None
    experiment: str = "mindfu-finetune"
    register: RegisterPolicy = RegisterPolicy.ALWAYS


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingJob:
    """A fine-tuning job's durable record."""

    id: str
    spec: JobSpec
    status: JobStatus
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress = field(default_factory=Progress)
    stats: DatasetStats | None = None
    outcome: TrainingOutcome | None = None
    tracking_run_id: str | None = None  # the experiment tracker's run
    fine_tuned_model: str | None = None
    artifacts: Mapping[str, str] = field(default_factory=dict)  # kind (adapter, merged, gguf) -> path
    error: str | None = None
    attempts: int = 0  # starts, including resumes after an interruption
    tenant: str = DEFAULT_TENANT  # whose job: its dataset comes from that tenant's conversations or files


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent:
    """One line of a job's history (the OpenAI ``fine_tuning.job.event``)."""

    id: str
    job_id: str
    created_at: datetime
    level: str  # info, warn, error
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatExample:
    """One training conversation: its messages (ending with what the model should learn to say) and tools."""

    messages: tuple[Message, ...]
    tools: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A saved training state a job can resume from."""

    step: int
    path: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
