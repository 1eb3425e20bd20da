"""Alembic environment: one history for SQLite (aiosqlite) and PostgreSQL (asyncpg).

The URL is, in order: a connection handed in by MindFu (``Database.migrate``), the ``sqlalchemy.url`` of the
alembic config, or MindFu's settings (``MINDFU_DATABASE__URL``; SQLite under the data directory by default).
"""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from mindfu_adapters.store.sql import async_url
from mindfu_adapters.store.tables import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return async_url(url)
    from mindfu_adapters.settings import Settings

    return async_url(Settings().database_url())


def run(connection: Connection) -> None:
    # batch mode: SQLite cannot ALTER most things in place; alembic copies the table instead
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    run(shared)
else:
    asyncio.run(run_online(database_url()))
