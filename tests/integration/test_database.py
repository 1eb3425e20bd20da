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
    assert await database.current_revision() == "0001"
    assert {"documents", "alembic_version"} <= await _tables(database)
    await database.migrate()  # idempotent
    await database.downgrade("base")
    assert await database.current_revision() is None
    assert "documents" not in await _tables(database)
    await database.migrate()
    assert await SqlDocumentRegistry(database).list() == []


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
