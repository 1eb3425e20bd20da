"""The SQL schema as SQLAlchemy Core tables; alembic revisions in ``migrations/`` create it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

#: Constraint names are fixed so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: JSON everywhere, JSONB on PostgreSQL (indexable, compact).
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on every backend (SQLite keeps no zone: MindFu stores UTC there)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("collection", sa.String(255), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("embedding_model", sa.String(255), nullable=False),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("collection", "sha256"),
    sa.Index(None, "collection", "created_at"),
)

STATUSES = "status in ('ok', 'error', 'cancelled')"

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False),
    sa.Column("completion_count", sa.Integer, nullable=False),
    # over the assistant messages, so filters and exports need not read every message
    sa.Column("assistant_turns", sa.Integer, nullable=False),
    sa.Column("min_response_chars", sa.Integer, nullable=True),
    sa.Column("max_response_chars", sa.Integer, nullable=True),
    sa.Column("head_hash", sa.String(64), nullable=True),  # chain hash of the last message
    sa.Column("last_status", sa.String(16), nullable=False),
    sa.Column("rating", sa.SmallInteger, nullable=True),  # the latest feedback's
    sa.Column("api_key_id", sa.String(64), nullable=True),
    sa.Column("user_name", sa.String(255), nullable=True),
    sa.Column("tools", Json, nullable=True),  # offered in the latest completion
    # whose conversation it is; a completion of another tenant naming it starts a conversation of its own
    sa.Column("tenant", sa.String(64), nullable=False, server_default=sa.text("'default'")),
    sa.CheckConstraint(STATUSES.replace("status", "last_status", 1), name="last_status"),
    sa.Index(None, "updated_at", "id"),
    sa.Index(None, "head_hash"),
    sa.Index(None, "tenant", "updated_at", "id"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column(
        "conversation_id",
        sa.String(64),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=True),
    sa.Column("tool_calls", Json, nullable=True),
    sa.Column("tool_call_id", sa.String(255), nullable=True),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("chain_hash", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("conversation_id", "position"),
    sa.CheckConstraint("role in ('system', 'user', 'assistant', 'tool')", name="role"),
)

completions = sa.Table(
    "completions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "conversation_id",
        sa.String(64),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False),  # request messages (a prefix of the conversation)
    sa.Column("responses", Json, nullable=False),  # one assistant message per choice
    sa.Column("finish_reason", sa.String(32), nullable=True),  # of the first choice
    sa.Column("finish_reasons", Json, nullable=False),
    sa.Column("parameters", Json, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    # prompt tokens the engine reused from its prompt cache (part of prompt_tokens)
    sa.Column("cached_tokens", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("ttft_ms", sa.Float, nullable=True),
    sa.Column("retrieved", Json, nullable=False),  # [{document_id, chunk_index, score}]
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("api_key_id", sa.String(64), nullable=True),
    sa.Column("user_name", sa.String(255), nullable=True),
    sa.CheckConstraint(STATUSES, name="status"),
    sa.Index(None, "conversation_id", "created_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "conversation_id",
        sa.String(64),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("completion_id", sa.String(64), nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "conversation_id", "created_at"),
)


training_files = sa.Table(
    "training_files",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("examples", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False, server_default=sa.text("'default'")),
    sa.Index(None, "created_at"),
)

training_jobs = sa.Table(
    "training_jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("base_model", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("spec", Json, nullable=False),
    sa.Column("progress", Json, nullable=False),
    sa.Column("stats", Json, nullable=True),
    sa.Column("outcome", Json, nullable=True),
    sa.Column("artifacts", Json, nullable=False),
    sa.Column("mlflow_run_id", sa.String(64), nullable=True),
    sa.Column("fine_tuned_model", sa.String(255), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    # the scheduler running the job, and until when (it renews the lease while the job runs)
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("tenant", sa.String(64), nullable=False, server_default=sa.text("'default'")),
    sa.Index(None, "created_at", "id"),
    sa.Index(None, "status"),
)

training_events = sa.Table(
    "training_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("training_jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Index(None, "job_id", "seq"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    # HMAC-SHA256 of the secret under the server's secret: a stolen table gives no key
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("scopes", Json, nullable=False),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Index(None, "tenant", "created_at"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255), nullable=True),
    sa.Column("detail", Json, nullable=False),
    sa.Index(None, "tenant", "seq"),
)
