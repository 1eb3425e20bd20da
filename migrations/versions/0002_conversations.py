"""Conversation logging: conversations, their messages, each completion, and feedback.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
When = sa.DateTime(timezone=True)


def _conversation_fk() -> sa.Column[str]:
    return sa.Column("conversation_id", sa.String(64), nullable=False)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("completion_count", sa.Integer(), nullable=False),
        sa.Column("assistant_turns", sa.Integer(), nullable=False),
        sa.Column("min_response_chars", sa.Integer(), nullable=True),
        sa.Column("max_response_chars", sa.Integer(), nullable=True),
        sa.Column("head_hash", sa.String(64), nullable=True),
        sa.Column("last_status", sa.String(16), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("api_key_id", sa.String(64), nullable=True),
        sa.Column("user_name", sa.String(255), nullable=True),
        sa.Column("tools", Json, nullable=True),
        sa.CheckConstraint(
            "last_status in ('ok', 'error', 'cancelled')", name="ck_conversations_last_status"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
    )
    op.create_index("ix_conversations_updated_at_id", "conversations", ["updated_at", "id"])
    op.create_index("ix_conversations_head_hash", "conversations", ["head_hash"])

    op.create_table(
        "messages",
        _conversation_fk(),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("tool_calls", Json, nullable=True),
        sa.Column("tool_call_id", sa.String(255), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("role in ('system', 'user', 'assistant', 'tool')", name="ck_messages_role"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_messages_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "position", name="pk_messages"),
    )

    op.create_table(
        "completions",
        sa.Column("id", sa.String(64), nullable=False),
        _conversation_fk(),
        sa.Column("created_at", When, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("responses", Json, nullable=False),
        sa.Column("finish_reason", sa.String(32), nullable=True),
        sa.Column("finish_reasons", Json, nullable=False),
        sa.Column("parameters", Json, nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("retrieved", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("api_key_id", sa.String(64), nullable=True),
        sa.Column("user_name", sa.String(255), nullable=True),
        sa.CheckConstraint("status in ('ok', 'error', 'cancelled')", name="ck_completions_status"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_completions_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_completions"),
    )
    op.create_index(
        "ix_completions_conversation_id_created_at", "completions", ["conversation_id", "created_at"]
    )

    op.create_table(
        "feedback",
        sa.Column("id", sa.String(64), nullable=False),
        _conversation_fk(),
        sa.Column("completion_id", sa.String(64), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_feedback_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_conversation_id_created_at", "feedback", ["conversation_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_conversation_id_created_at", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_completions_conversation_id_created_at", table_name="completions")
    op.drop_table("completions")
    op.drop_table("messages")
    op.drop_index("ix_conversations_head_hash", table_name="conversations")
    op.drop_index("ix_conversations_updated_at_id", table_name="conversations")
    op.drop_table("conversations")
