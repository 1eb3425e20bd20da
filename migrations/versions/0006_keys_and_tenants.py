"""Keys and tenants: API keys with a tenant and scopes, stored as keyed digests; the audit trail of what keys
did; the tenant of each conversation, training file and fine-tuning job (those made before it are the
default tenant's).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("revoked_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("digest", name="uq_api_keys_digest"),
    )
    op.create_index("ix_api_keys_tenant_created_at", "api_keys", ["tenant", "created_at"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("detail", Json, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
        sa.UniqueConstraint("id", name="uq_audit_events_id"),
    )
    op.create_index("ix_audit_events_tenant_seq", "audit_events", ["tenant", "seq"])
    op.add_column(
        "conversations",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=sa.text("'default'")),
    )
    op.create_index("ix_conversations_tenant_updated_at_id", "conversations", ["tenant", "updated_at", "id"])
    for table in ("training_files", "training_jobs"):
        op.add_column(
            table, sa.Column("tenant", sa.String(64), nullable=False, server_default=sa.text("'default'"))
        )


def downgrade() -> None:
    for table in ("training_jobs", "training_files"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tenant")
    op.drop_index("ix_conversations_tenant_updated_at_id", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("tenant")
    op.drop_index("ix_audit_events_tenant_seq", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_api_keys_tenant_created_at", table_name="api_keys")
    op.drop_table("api_keys")
