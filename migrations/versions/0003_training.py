"""Fine-tuning: uploaded training files, training jobs and their events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "training_files",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_training_files"),
    )
    op.create_index("ix_training_files_created_at", "training_files", ["created_at"])
    op.create_table(
        "training_jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("base_model", sa.String(255), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("started_at", When, nullable=True),
        sa.Column("finished_at", When, nullable=True),
        sa.Column("spec", Json, nullable=False),
        sa.Column("progress", Json, nullable=False),
        sa.Column("stats", Json, nullable=True),
        sa.Column("outcome", Json, nullable=True),
        sa.Column("artifacts", Json, nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("fine_tuned_model", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_training_jobs"),
    )
    op.create_index("ix_training_jobs_created_at_id", "training_jobs", ["created_at", "id"])
    op.create_index("ix_training_jobs_status", "training_jobs", ["status"])
    op.create_table(
        "training_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["training_jobs.id"],
            name="fk_training_events_job_id_training_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_training_events"),
        sa.UniqueConstraint("id", name="uq_training_events_id"),
    )
    op.create_index("ix_training_events_job_id_seq", "training_events", ["job_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_training_events_job_id_seq", table_name="training_events")
    op.drop_table("training_events")
    op.drop_index("ix_training_jobs_status", table_name="training_jobs")
    op.drop_index("ix_training_jobs_created_at_id", table_name="training_jobs")
    op.drop_table("training_jobs")
    op.drop_index("ix_training_files_created_at", table_name="training_files")
    op.drop_table("training_files")
