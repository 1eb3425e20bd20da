"""Fine-tuning: leases, so that several schedulers (core processes, a local `mindfu train`) share one database
without running a job twice or taking over each other's running jobs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # jobs running before this revision hold no lease: the next start takes them for interrupted, as before
    op.add_column("training_jobs", sa.Column("lease_owner", sa.String(128), nullable=True))
    op.add_column("training_jobs", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
