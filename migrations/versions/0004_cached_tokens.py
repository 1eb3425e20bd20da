"""Conversation logging: how many prompt tokens of each completion the engine reused from its prompt cache.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # completions logged before this revision report none reused
    op.add_column(
        "completions",
        sa.Column("cached_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("completions") as batch:
        batch.drop_column("cached_tokens")
