"""Database: one async SQLAlchemy engine (SQLite via aiosqlite, PostgreSQL via asyncpg) and its migrations."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mindfu_core.errors import ConfigurationError, Conflict, InvalidRequest, UpstreamUnavailable

#: ``migrations/`` at the repository root (the install is editable: ``make install``).
MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"
#: SQLSTATE classes that mean "this data", not "this database": data exceptions, program limits exceeded.
_REJECTED_DATA = {"22", "54"}
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def async_url(url: str) -> str:
    """``url`` with the async driver MindFu uses (``sqlite://`` and ``postgresql://`` are accepted)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise ConfigurationError(f"not a database URL: {url!r} (MINDFU_DATABASE__URL)") from error
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ConfigurationError(
            f"unsupported database {backend!r} (MINDFU_DATABASE__URL): use sqlite or postgresql"
        )
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_DRIVERS[backend])
    return parsed.render_as_string(hide_password=False)


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """SQLAlchemy and driver errors become MindFu's: constraint violations ``Conflict``, values the database
    refuses ``InvalidRequest``, the rest ``UpstreamUnavailable`` (the database is down, locked or
    refusing)."""
    try:
        yield
    except exc.IntegrityError as error:
        raise Conflict(f"{what}: {error.orig}") from error
    except exc.StatementError as error:
        sqlstate = str(getattr(error.orig, "sqlstate", "") or "")
        if isinstance(error, exc.DataError) or sqlstate[:2] in _REJECTED_DATA:
            raise InvalidRequest(f"{what}: the database rejected the data ({error.orig})") from error
        if sqlstate.startswith("23"):
            raise Conflict(f"{what}: {error.orig}") from error
        if not isinstance(error, exc.DBAPIError):  # the values could not even be sent
            raise InvalidRequest(f"{what}: the data cannot be stored ({error.orig})") from error
        raise UpstreamUnavailable(f"{what}: the database is unavailable ({type(error).__name__})") from error
    except (exc.SQLAlchemyError, OSError) as error:
        raise UpstreamUnavailable(f"{what}: the database is unavailable ({type(error).__name__})") from error


class Database:
    """The engine every SQL adapter shares. ``migrate`` brings the schema to alembic's head."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self.url = async_url(url)
        parsed: URL = make_url(self.url)
        self._parsed = parsed
        self.dialect = parsed.get_backend_name()
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": True}
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        else:
            options["pool_size"] = pool_size
        self.engine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    @property
    def safe_url(self) -> str:
        return self._parsed.render_as_string(hide_password=True)

    @contextlib.asynccontextmanager
    async def transaction(self, what: str) -> AsyncIterator[Any]:
        """A connection in a transaction (committed at the end, rolled back on error), errors translated."""
        with translate_errors(what):
            async with self.engine.begin() as connection:
                yield connection

    @contextlib.asynccontextmanager
    async def connection(self, what: str) -> AsyncIterator[Any]:
        """A connection for reads, errors translated."""
        with translate_errors(what):
            async with self.engine.connect() as connection:
                yield connection

    async def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision``."""
        await self._alembic("upgrade", revision)

    async def downgrade(self, revision: str) -> None:
        await self._alembic("downgrade", revision)

    async def current_revision(self) -> str | None:
        """The schema's alembic revision (``None``: never migrated)."""

        def read(connection: Any) -> str | None:
            from alembic.runtime.migration import MigrationContext

            return MigrationContext.configure(connection).get_current_revision()

        async with self.connection("reading the schema revision") as connection:
            revision: str | None = await connection.run_sync(read)
            return revision

    def head_revision(self) -> str | None:
        """The newest revision this MindFu ships."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()

    async def history(self) -> list[tuple[str, str | None, str]]:
        """Every revision, oldest first: (revision, the one it revises, its message)."""
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(alembic_config(self.url))
        return [
            (script.revision, _single(script.down_revision), script.doc or "")
            for script in reversed(list(scripts.walk_revisions()))
        ]

    async def ensure_schema(self, *, upgrade: bool) -> None:
        """Upgrade to the newest schema, or (``upgrade`` false) check that it is there already.

        A database that cannot be reached, or a schema that is behind, is a ``ConfigurationError`` naming
        what to do, so start-up ends with one clear line.
        """
        try:
            if upgrade:
                await self.migrate()
                return
            current = await self.current_revision()
        except UpstreamUnavailable as error:
            raise ConfigurationError(
                f"cannot use the database {self.safe_url} (MINDFU_DATABASE__URL): {error.message}"
            ) from error
        head = self.head_revision()
        if current != head:
            raise ConfigurationError(
                f"the database schema at {self.safe_url} is at revision {current or '(empty)'} "
                f"but this MindFu needs {head}: run `mindfu db upgrade` "
                "(or set MINDFU_DATABASE__AUTO_MIGRATE=true)"
            )

    async def _alembic(self, command_name: str, revision: str) -> None:
        from alembic import command

        config = alembic_config(self.url)

        def run(connection: Any) -> None:
            config.attributes["connection"] = connection
            getattr(command, command_name)(config, revision)

        async with self.transaction(f"migrating the database ({command_name} {revision})") as connection:
            await connection.run_sync(run)

    async def aclose(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str) -> Any:
    """An alembic ``Config`` for MindFu's migrations against ``url``."""
    from alembic.config import Config

    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise ConfigurationError(f"the migrations folder {MIGRATIONS_DIR} is missing; reinstall MindFu")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _single(revision: Any) -> str | None:
    if isinstance(revision, (tuple, list)):
        return ",".join(revision)
    return revision if isinstance(revision, str) else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
