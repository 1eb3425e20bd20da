"""A gateway serves fine-tuning through the core's TrainingService: everything a job, a file and a
checkpoint carry survives the trip through protobuf and back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

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
from mindfu_grpc.mapping import training as mapping

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPEC = JobSpec(
    base_model="devstral-small-2",
    source=DataSource.FILE,
    training_file="file-abc",
    validation_file="file-def",
    since=WHEN,
    quality=QualityPolicy(
        min_turns=2,
        min_response_chars=5,
        max_response_chars=900,
        statuses=(CompletionStatus.OK, CompletionStatus.CANCELLED),
        min_rating=1,
        rated_only=True,
        deduplicate=False,
        min_examples=7,
    ),
    split=SplitPolicy(validation_fraction=0.2, seed=7),
    hyperparameters=Hyperparameters(
        epochs=1.5,
        learning_rate=1e-4,
        batch_size=4,
        gradient_accumulation=2,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.1,
        max_seq_length=1024,
        warmup_ratio=0.1,
        max_steps=30,
        logging_steps=5,
        save_steps=10,
        eval_steps=15,
        load_in_4bit=False,
        double_quant=False,
        compute_dtype="float16",
        optimizer="adamw_torch",
        gradient_checkpointing=False,
        seed=3,
    ),
    suffix="support",
    experiment="support-bot",
    register=RegisterPolicy.IF_BETTER,
)


def test_every_job_setting_survives_the_trip() -> None:
    assert mapping.spec_from_pb(mapping.spec_to_pb(SPEC), "default") == SPEC
    plain = JobSpec(base_model="m", source=DataSource.CONVERSATIONS)
    assert mapping.spec_from_pb(mapping.spec_to_pb(plain), "mindfu-finetune") == plain


def test_the_first_fields_still_work_and_the_settings_win_over_them() -> None:
    request = pb.CreateJobRequest(model="m", max_steps=4, min_turns=3, load_in_4bit=False)
    spec = mapping.spec_from_pb(request, "e")
    assert (spec.hyperparameters.max_steps, spec.quality.min_turns, spec.hyperparameters.load_in_4bit) == (
        4,
        3,
        False,
    )
    request.hyperparameters.max_steps = 9
    request.quality.min_turns = 5
    spec = mapping.spec_from_pb(request, "e")
    assert (spec.hyperparameters.max_steps, spec.quality.min_turns) == (9, 5)
    request.quality.statuses.append("sideways")
    with pytest.raises(InvalidRequest, match=r"quality\.statuses"):
        mapping.spec_from_pb(request, "e")


def test_a_finished_job_survives_the_trip() -> None:
    job = TrainingJob(
        id="ftjob-1",
        spec=SPEC,
        status=JobStatus.SUCCEEDED,
        created_at=WHEN,
        started_at=WHEN,
        finished_at=WHEN,
        progress=Progress(step=30, total_steps=30, epoch=1.5, loss=0.5, eval_loss=0.6, eta_s=0.0),
        stats=DatasetStats(
            seen=50, kept=40, dropped={"duplicate": 10}, train=36, validation=4, characters=999, tokens=321
        ),
        outcome=TrainingOutcome(
            adapter_dir="/data/training/ftjob-1/adapter",
            steps=30,
            train_loss=0.5,
            eval_loss=0.6,
            base_eval_loss=0.9,
            tokens=4321,
            notes=("no CUDA: 4-bit off",),
        ),
        tracking_run_id="run-1",
        fine_tuned_model="ft:devstral-small-2:support:ftjob-1",
        artifacts={"adapter": "/data/a", "merged": "/data/m"},
        attempts=2,
    )
    assert mapping.job_from_pb(mapping.job_to_pb(job)) == job
    queued = TrainingJob(id="ftjob-2", spec=SPEC, status=JobStatus.QUEUED, created_at=WHEN)
    assert mapping.job_from_pb(mapping.job_to_pb(queued)) == queued
    failed = replace(queued, status=JobStatus.FAILED, error="too few examples")
    assert mapping.job_from_pb(mapping.job_to_pb(failed)) == failed


def test_files_events_and_checkpoints_survive_the_trip() -> None:
    file = TrainingFile(
        id="file-1", filename="train.jsonl", bytes=1234, examples=40, sha256="ab" * 32, created_at=WHEN
    )
    assert mapping.file_from_pb(mapping.file_to_pb(file)) == file
    event = JobEvent(id="ev-1", job_id="ftjob-1", created_at=WHEN, level="info", message="Step 4/8")
    assert mapping.event_from_pb(mapping.event_to_pb(event), "ftjob-1") == event
    checkpoint = Checkpoint(step=8, path="/data/ckpt-8", metrics={"loss": 0.5, "eval_loss": 0.7})
    assert mapping.checkpoint_from_pb(mapping.checkpoint_to_pb(checkpoint)) == checkpoint
