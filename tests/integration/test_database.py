"""The SQL layer on SQLite and the real PostgreSQL: migrations up and down, URLs, and failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mindfu_adapters.store.documents import SqlDocumentRegistry
from mindfu_adapters.store.sql import Database, async_url
from mindfu_core.errors import ConfigurationError, UpstreamUnavailable
from tests.postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        made = Database(f"sqlite:///{tmp_path / 'nested' / 'mindfu.db'}")
        yield made
        await made.aclose()
        return
    async with fresh_database() as url:
        made = Database(url)
        yield made
        await made.aclose()


async def _tables(database: Database) -> set[str]:
    async with database.connection("inspecting") as connection:
        names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return set(names)


async def test_migrations_go_up_and_down(database: Database) -> None:
    assert await database.current_revision() is None
    await database.migrate()
    assert await database.current_revision() == database.head_revision() == "0006"
    everything = {
        "documents", "conversations", "messages", "completions", "feedback", "alembic_version",
        "training_files", "training_jobs", "training_events", "api_keys", "audit_events",
    }  # fmt: skip
    assert everything <= await _tables(database)
    await database.migrate()  # idempotent
    await database.downgrade("0005")
    async with database.connection("inspecting") as connection:
        kept = await connection.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("conversations")}
        )
    assert "tenant" not in kept and "api_keys" not in await _tables(database)
    await database.downgrade("0004")
    async with database.connection("inspecting") as connection:
        jobs = await connection.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("training_jobs")}
        )
    assert "attempts" in jobs and not {"lease_owner", "lease_until"} & jobs
    await database.downgrade("0003")
    async with database.connection("inspecting") as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("completions")}
        )
    assert "cached_tokens" not in columns and "prompt_tokens" in columns
    await database.downgrade("0002")
    assert "training_jobs" not in await _tables(database) and "conversations" in await _tables(database)
    await database.downgrade("0001")
    assert await database.current_revision() == "0001"
    assert "conversations" not in await _tables(database) and "documents" in await _tables(database)
    await database.downgrade("base")
    assert await database.current_revision() is None
    assert await _tables(database) <= {"alembic_version"}
    await database.migrate()
    assert await SqlDocumentRegistry(database).list() == []
    assert [r for r, _, _ in await database.history()] == ["0001", "0002", "0003", "0004", "0005", "0006"]


async def test_the_models_and_the_migrations_agree(database: Database) -> None:
    """Alembic's autogenerate finds nothing to do against a fully migrated database: no drift."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from mindfu_adapters.store.tables import metadata

    await database.migrate()

    def diff(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with database.connection("comparing") as connection:
        assert await connection.run_sync(diff) == []


async def test_start_up_checks_the_schema(database: Database) -> None:
    with pytest.raises(ConfigurationError, match="run `mindfu db upgrade`"):
        await database.ensure_schema(upgrade=False)
    await database.migrate("0001")
    with pytest.raises(ConfigurationError, match="revision 0001 but this MindFu needs 0006"):
        await database.ensure_schema(upgrade=False)
    await database.ensure_schema(upgrade=True)
    await database.ensure_schema(upgrade=False)


async def test_an_unreachable_database_at_start_names_the_setting() -> None:
    database = Database("postgresql://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(ConfigurationError, match="MINDFU_DATABASE__URL"):
            await database.ensure_schema(upgrade=False)
    finally:
        await database.aclose()


def test_urls_get_the_async_drivers() -> None:
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert async_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    with pytest.raises(ConfigurationError, match="unsupported database"):
        async_url("mysql://h/db")
    with pytest.raises(ConfigurationError):
        async_url("not a url")


async def test_an_unreachable_server_is_upstream_unavailable() -> None:
    database = Database("postgresql://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(UpstreamUnavailable, match="database"):
            await SqlDocumentRegistry(database).get("x")
    finally:
        await database.aclose()
