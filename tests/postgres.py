"""Throwaway databases on the PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth; see .ci/run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

#: The server every PostgreSQL test uses; MINDFU_TEST_POSTGRES overrides it.
ADMIN_URL = os.environ.get("MINDFU_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"mindfu_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        try:
            async with admin.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        except (OSError, DBAPIError) as error:
            reason = f"no PostgreSQL at {ADMIN_URL} ({type(error).__name__}: {error})"
            if os.environ.get("MINDFU_REQUIRE_POSTGRES"):  # CI: a missing server is a failure, not a skip
                raise RuntimeError(reason) from error
            pytest.skip(f"{reason}; start it (see .ci/run) or set MINDFU_TEST_POSTGRES")
        try:
            yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
