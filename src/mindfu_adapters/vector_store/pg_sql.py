"""The SQL side of ``PgVectorStore``: identifiers, the catalogue queries, WHERE clauses, rows back to chunks,
and asyncpg's errors as MindFu's."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg

from mindfu_core.domain.documents import Chunk, Filter
from mindfu_core.errors import InvalidRequest, MindFuError, UpstreamUnavailable

T = TypeVar("T")

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
DSN = re.compile(r"(postgresql|postgres)(\+asyncpg)?://", re.IGNORECASE)
#: pgvector's limits: a ``vector`` column holds up to 16,000 dimensions, an HNSW index up to 2,000.
MAX_DIMENSION = 16_000
MAX_HNSW_DIMENSION = 2_000
#: pgvector's ceiling for ``hnsw.ef_search``.
MAX_EF_SEARCH = 1_000
COLUMNS = "chunk_id, document_id, chunk_index, text, source, page, metadata"

EXTENSION_SQL = """
SELECT n.nspname AS schema, e.extversion AS version
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector'
"""
DIMENSION_SQL = """
SELECT to_regclass($1) IS NOT NULL AS present,
       (SELECT atttypmod FROM pg_attribute
        WHERE attrelid = to_regclass($1) AND attname = 'embedding' AND NOT attisdropped) AS dimension
"""


def quote(identifier: str) -> str:
    return f'"{identifier}"'


def index_name(table: str, suffix: str) -> str:
    """``<table>_<suffix>``, shortened with a hash of the table name when it would pass 63 bytes."""
    name = f"{table}_{suffix}"
    if len(name) <= 63:
        return quote(name)
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    return quote(f"{table[: 63 - len(suffix) - 10]}_{digest}_{suffix}")


def version_of(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


async def guarded(call: Awaitable[T]) -> T:
    """Await ``call``; asyncpg's errors leave this adapter as MindFu errors."""
    try:
        return await call
    except MindFuError:
        raise
    except (OSError, TimeoutError) as exc:
        raise UpstreamUnavailable(f"PostgreSQL is unreachable: {exc}") from exc
    except asyncpg.DataError as exc:  # the server's class 22: a value it cannot take (NaN, NUL byte...)
        raise InvalidRequest(f"PostgreSQL rejected the request: {exc}") from exc
    except asyncpg.InterfaceError as exc:
        if isinstance(exc, ValueError):  # asyncpg's client-side data and configuration errors
            raise InvalidRequest(f"PostgreSQL rejected the request: {exc}") from exc
        raise UpstreamUnavailable(f"PostgreSQL failed: {exc}") from exc
    except (asyncpg.PostgresError, asyncpg.InternalClientError) as exc:
        raise UpstreamUnavailable(f"PostgreSQL failed: {exc}") from exc


def where_clause(
    collection: str, where: Filter | None, *, first: int, alias: str = ""
) -> tuple[str, list[Any]]:
    """The WHERE clause for ``collection`` and ``where``, its placeholders numbered from ``$first``."""
    column = f"{alias}." if alias else ""
    conditions = [f"{column}collection = ${first}"]
    arguments: list[Any] = [collection]
    if where is not None:
        if where.document_ids:
            arguments.append(list(where.document_ids))
            conditions.append(f"{column}document_id = ANY(${first + len(arguments) - 1}::text[])")
        if where.metadata:
            # containment (@>) is what the GIN index answers; JSON keeps true apart from 1
            arguments.append(json.dumps(dict(where.metadata)))
            conditions.append(f"{column}metadata @> ${first + len(arguments) - 1}::jsonb")
    return " AND ".join(conditions), arguments


def chunk_of(collection: str, row: Any) -> Chunk:
    return Chunk(
        id=str(row["chunk_id"]),
        document_id=str(row["document_id"]),
        collection=collection,
        index=int(row["chunk_index"]),
        text=str(row["text"]),
        source=str(row["source"] or ""),
        page=row["page"],
        metadata=json.loads(row["metadata"]) if row["metadata"] else {},
    )
