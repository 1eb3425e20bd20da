"""PgVectorStore: chunks and their vectors in PostgreSQL with the pgvector extension, over asyncpg.

One table holds every chunk embedded by one model (one dimension); MindFu's (logical) collections are a
column, so a tenant is a WHERE clause, not a table. Search orders by cosine distance under an HNSW index;
sparse (BM25) search sums term weights times each term's IDF in the chunk's collection, found through a GIN
index on the terms.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

from mindfu_adapters.vector_store.pg_sql import (
    COLUMNS,
    DIMENSION_SQL,
    DSN,
    EXTENSION_SQL,
    IDENTIFIER,
    MAX_DIMENSION,
    MAX_EF_SEARCH,
    MAX_HNSW_DIMENSION,
    chunk_of,
    guarded,
    index_name,
    quote,
    version_of,
    where_clause,
)
from mindfu_core.domain.documents import Chunk, Filter, ScoredChunk, SparseVector
from mindfu_core.errors import ConfigurationError, InvalidRequest, MindFuError

_log = logging.getLogger(__name__)


class PgVectorStore:
    """A ``VectorStore`` over PostgreSQL + pgvector. ``dsn`` is a ``postgresql://`` URL, ``table`` a name."""

    def __init__(
        self,
        dsn: str,
        *,
        table: str,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 60.0,
    ) -> None:
        match = DSN.match(dsn)
        if match is None:
            raise ConfigurationError("the pgvector store needs a postgresql:// URL")
        if IDENTIFIER.fullmatch(table) is None:
            raise ConfigurationError(
                f"pgvector table name {table!r} is not an identifier (letters, digits, _; at most 63)"
            )
        self._dsn = "postgresql://" + dsn[match.end() :]
        self._table = table
        self._sql_table = quote(table)
        self._pool_options: dict[str, Any] = {
            "min_size": min_connections,
            "max_size": max_connections,
            "timeout": connect_timeout,
            "command_timeout": command_timeout,
        }
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._ready = asyncio.Lock()
        self._dimension: int | None = None
        self._iterative_scan = False

    # -- connections ----------------------------------------------------------------------------------

    async def _init_connection(self, connection: Any) -> None:
        """Each new pooled connection: the extension exists (created on first use), its codec registered."""
        row = await connection.fetchrow(EXTENSION_SQL)
        if row is None:
            try:
                async with connection.transaction():
                    # concurrent CREATE EXTENSION IF NOT EXISTS can still collide: take turns
                    await connection.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended('mindfu.pgvector.extension', 0))"
                    )
                    await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except asyncpg.PostgresConnectionError:
                raise
            except asyncpg.PostgresError as exc:
                raise ConfigurationError(f"cannot create the pgvector extension: {exc}") from exc
            row = await connection.fetchrow(EXTENSION_SQL)
        await register_vector(connection, schema=str(row["schema"]))
        self._iterative_scan = version_of(str(row["version"])) >= (0, 8)

    async def _connections(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, init=self._init_connection, **self._pool_options
                    )
                except MindFuError:
                    raise
                except ValueError as exc:  # a DSN asyncpg cannot parse
                    raise ConfigurationError(f"bad PostgreSQL URL for pgvector: {exc}") from exc
        return self._pool

    # -- the table ------------------------------------------------------------------------------------

    async def _existing_dimension(self) -> int | None:
        if self._dimension is not None:
            return self._dimension
        pool = await self._connections()
        row = await pool.fetchrow(DIMENSION_SQL, self._sql_table)
        if not row["present"]:
            return None
        if row["dimension"] is None or row["dimension"] < 1:
            raise ConfigurationError(
                f"table {self._table!r} exists but has no vector(n) column 'embedding': not a MindFu table"
            )
        self._dimension = int(row["dimension"])
        return self._dimension

    async def _ensure(self, dimension: int) -> None:
        async with self._ready:
            existing = await self._existing_dimension()
            if existing is None:
                await self._create(dimension)
                self._dimension = existing = dimension
            if existing != dimension:
                raise InvalidRequest(
                    f"vectors of dimension {dimension} do not fit pgvector table {self._table!r} "
                    f"(dimension {existing})"
                )

    async def _create(self, dimension: int) -> None:
        table = self._sql_table
        pool = await self._connections()
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"mindfu.pgvector.{self._table}"
            )
            await connection.execute(
                f"""
                CREATE TABLE IF NOT EXISTS {table} (
                    collection text NOT NULL,
                    chunk_id text NOT NULL,
                    document_id text NOT NULL,
                    chunk_index integer NOT NULL,
                    text text NOT NULL,
                    source text NOT NULL DEFAULT '',
                    page integer,
                    metadata jsonb NOT NULL DEFAULT '{{}}',
                    embedding vector({dimension}) NOT NULL,
                    sparse_indices bigint[],
                    sparse_values real[],
                    PRIMARY KEY (collection, chunk_id)
                )
                """
            )
            await connection.execute(
                f"CREATE INDEX IF NOT EXISTS {index_name(self._table, 'document')} "
                f"ON {table} (collection, document_id)"
            )
            await connection.execute(
                f"CREATE INDEX IF NOT EXISTS {index_name(self._table, 'metadata')} "
                f"ON {table} USING gin (metadata jsonb_path_ops)"
            )
            await connection.execute(
                f"CREATE INDEX IF NOT EXISTS {index_name(self._table, 'sparse')} "
                f"ON {table} USING gin (sparse_indices)"
            )
            if dimension <= MAX_HNSW_DIMENSION:
                await connection.execute(
                    f"CREATE INDEX IF NOT EXISTS {index_name(self._table, 'embedding_hnsw')} "
                    f"ON {table} USING hnsw (embedding vector_cosine_ops)"
                )
            else:
                _log.warning(
                    "pgvector cannot index %d-dimensional vectors with HNSW (at most %d): "
                    "searches of table %s scan it exactly",
                    dimension,
                    MAX_HNSW_DIMENSION,
                    self._table,
                )

    # -- the port -------------------------------------------------------------------------------------

    async def upsert(self, collection: str, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        dimension = len(chunks[0].vector)
        if not dimension or any(len(c.vector) != dimension for c in chunks):
            raise InvalidRequest("every chunk needs a vector, all of the same dimension")
        if dimension > MAX_DIMENSION:
            raise InvalidRequest(f"pgvector stores at most {MAX_DIMENSION} dimensions, not {dimension}")
        try:
            rows = [
                (
                    collection,
                    chunk.id,
                    chunk.document_id,
                    chunk.index,
                    chunk.text,
                    chunk.source,
                    chunk.page,
                    json.dumps(dict(chunk.metadata)),
                    list(chunk.vector),
                    None if chunk.sparse is None else list(chunk.sparse.indices),
                    None if chunk.sparse is None else list(chunk.sparse.values),
                )
                for chunk in chunks
            ]
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"chunk metadata must be JSON: {exc}") from exc
        await guarded(self._ensure(dimension))
        await guarded(self._write(rows))

    async def _write(self, rows: list[tuple[Any, ...]]) -> None:
        pool = await self._connections()
        async with pool.acquire() as connection, connection.transaction():
            await connection.executemany(
                f"""
                INSERT INTO {self._sql_table}
                    (collection, chunk_id, document_id, chunk_index, text, source, page, metadata, embedding,
                     sparse_indices, sparse_values)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10::bigint[], $11::real[])
                ON CONFLICT (collection, chunk_id) DO UPDATE SET
                    document_id = EXCLUDED.document_id, chunk_index = EXCLUDED.chunk_index,
                    text = EXCLUDED.text, source = EXCLUDED.source, page = EXCLUDED.page,
                    metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding,
                    sparse_indices = EXCLUDED.sparse_indices, sparse_values = EXCLUDED.sparse_values
                """,
                rows,
            )

    async def search(
        self,
        collection: str,
        vector: Sequence[float],
        *,
        k: int,
        min_score: float | None = None,
        where: Filter | None = None,
    ) -> list[ScoredChunk]:
        existing = await guarded(self._existing_dimension())
        if existing is None or k <= 0:
            return []
        if len(vector) != existing:
            raise InvalidRequest(f"query of dimension {len(vector)} does not fit dimension {existing}")
        conditions, arguments = where_clause(collection, where, first=3)
        sql = (
            f"SELECT {COLUMNS}, embedding <=> $1 AS distance FROM {self._sql_table} "
            f"WHERE {conditions} ORDER BY embedding <=> $1 LIMIT $2"
        )
        rows = await guarded(self._query(sql, [list(vector), k, *arguments], k))
        hits: list[ScoredChunk] = []
        for row in rows:
            distance = float(row["distance"])
            # a zero vector has no direction: pgvector says NaN, the in-memory store says 0
            score = 0.0 if math.isnan(distance) else 1.0 - distance
            if min_score is not None and score < min_score:
                break  # rows come nearest first
            hits.append(ScoredChunk(chunk=chunk_of(collection, row), score=score))
        return hits

    async def _query(self, sql: str, arguments: list[Any], k: int) -> list[Any]:
        pool = await self._connections()
        async with pool.acquire() as connection, connection.transaction():
            # SET LOCAL, parametrised: the HNSW candidate list must hold at least k rows, and an iterative
            # scan keeps looking when the WHERE clause drops candidates (pgvector 0.8+)
            ef_search = str(min(max(40, k), MAX_EF_SEARCH))
            if self._iterative_scan:
                await connection.execute(
                    "SELECT set_config('hnsw.ef_search', $1, true), "
                    "set_config('hnsw.iterative_scan', 'strict_order', true)",
                    ef_search,
                )
            else:
                await connection.execute("SELECT set_config('hnsw.ef_search', $1, true)", ef_search)
            return list(await connection.fetch(sql, *arguments))

    async def search_sparse(
        self, collection: str, vector: SparseVector, *, k: int, where: Filter | None = None
    ) -> list[ScoredChunk]:
        if k <= 0 or not vector.indices or await guarded(self._existing_dimension()) is None:
            return []
        conditions, arguments = where_clause(collection, where, first=4, alias="t")
        table = self._sql_table
        # idf = ln((N - n + 0.5) / (n + 0.5) + 1), the in-memory store's and Qdrant's formula, with N the
        # chunks of this collection that have terms and n those holding the term (per tenant, as in memory;
        # Qdrant counts its whole physical collection)
        sql = f"""
            WITH query AS (
                SELECT term, weight FROM unnest($1::bigint[], $2::float8[]) AS q(term, weight)
            ),
            corpus AS (
                SELECT count(*) AS total FROM {table} WHERE collection = $4 AND sparse_indices IS NOT NULL
            ),
            idf AS (
                SELECT query.term, query.weight,
                       ln((corpus.total - holding.n + 0.5) / (holding.n + 0.5) + 1) AS idf
                FROM query CROSS JOIN corpus CROSS JOIN LATERAL (
                    SELECT count(*) AS n FROM {table}
                    WHERE collection = $4 AND sparse_indices @> ARRAY[query.term]
                ) AS holding
            )
            SELECT {", ".join(f"t.{c}" for c in COLUMNS.split(", "))},
                   sum(term.value * idf.weight * idf.idf) AS score
            FROM {table} AS t
            CROSS JOIN LATERAL unnest(t.sparse_indices, t.sparse_values) AS term(term, value)
            JOIN idf ON idf.term = term.term
            WHERE t.sparse_indices && $1::bigint[] AND {conditions}
            GROUP BY t.collection, t.chunk_id
            HAVING sum(term.value * idf.weight * idf.idf) > 0
            ORDER BY score DESC, t.chunk_id
            LIMIT $3
        """
        arguments = [list(vector.indices), list(vector.values), k, *arguments]
        rows = await guarded(self._fetch(sql, arguments))
        return [ScoredChunk(chunk=chunk_of(collection, row), score=float(row["score"])) for row in rows]

    async def _fetch(self, sql: str, arguments: list[Any]) -> list[Any]:
        pool = await self._connections()
        return list(await pool.fetch(sql, *arguments))

    async def delete_document(self, collection: str, document_id: str) -> None:
        if await guarded(self._existing_dimension()) is None:
            return
        pool = await guarded(self._connections())
        await guarded(
            pool.execute(
                f"DELETE FROM {self._sql_table} WHERE collection = $1 AND document_id = $2",
                collection,
                document_id,
            )
        )

    async def count(self, collection: str, where: Filter | None = None) -> int:
        if await guarded(self._existing_dimension()) is None:
            return 0
        conditions, arguments = where_clause(collection, where, first=1)
        pool = await guarded(self._connections())
        result = await guarded(
            pool.fetchval(f"SELECT count(*) FROM {self._sql_table} WHERE {conditions}", *arguments)
        )
        return int(result)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=10)
        except Exception:  # a connection stuck in a query, or one already broken: drop them all
            pool.terminate()
