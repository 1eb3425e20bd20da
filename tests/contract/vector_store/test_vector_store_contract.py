"""The VectorStore contract, run against every adapter, then what only PgVectorStore has to prove."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_adapters.vector_store.qdrant import QdrantVectorStore
from mindfu_core.domain.documents import Chunk, Filter, SparseVector
from mindfu_core.errors import ConfigurationError, InvalidRequest, UpstreamUnavailable
from mindfu_core.ports.vector_store import VectorStore


def _qdrant_memory(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    return QdrantVectorStore("chunks-test", location=":memory:")


def _qdrant_disk(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    return QdrantVectorStore("chunks-test", path=str(tmp_path / "qdrant"))


def _pgvector(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    # imported here so that the other adapters still run where asyncpg is missing
    from mindfu_adapters.vector_store.pgvector import PgVectorStore

    dsn: str = request.getfixturevalue("pgvector_dsn")  # the server starts only if a test needs it
    table: str = request.getfixturevalue("pgvector_table")
    return PgVectorStore(dsn, table=table)


ADAPTERS: dict[str, Callable[[pytest.FixtureRequest, Path], VectorStore]] = {
    "memory": lambda request, tmp_path: InMemoryVectorStore(),
    "qdrant-memory": _qdrant_memory,
    "qdrant-disk": _qdrant_disk,
    "pgvector": _pgvector,
}


@pytest.fixture(params=list(ADAPTERS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    made: VectorStore = ADAPTERS[request.param](request, tmp_path)
    yield made
    aclose = getattr(made, "aclose", None)
    if aclose is not None:
        await aclose()


def unit(angle_degrees: float) -> tuple[float, float, float]:
    radians = math.radians(angle_degrees)
    return (math.cos(radians), math.sin(radians), 0.0)


def chunk(chunk_id: str, document: str, vector: tuple[float, ...], **metadata: str) -> Chunk:
    return Chunk(
        id=chunk_id,
        document_id=document,
        collection="c",
        index=int(chunk_id[-1]) if chunk_id[-1].isdigit() else 0,
        text=f"text of {chunk_id}",
        source=f"{document}.txt",
        page=1,
        metadata=metadata,
        vector=vector,
    )


async def test_isinstance_of_the_port(store: VectorStore) -> None:
    assert isinstance(store, VectorStore)


async def test_search_ranks_by_cosine_similarity(store: VectorStore) -> None:
    await store.upsert(
        "c", [chunk("a0", "d1", unit(0)), chunk("a1", "d1", unit(60)), chunk("b0", "d2", unit(30))]
    )
    hits = await store.search("c", unit(10), k=3)
    assert [h.chunk.id for h in hits] == ["a0", "b0", "a1"]
    assert hits[0].score == pytest.approx(math.cos(math.radians(10)), abs=1e-5)
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert hits[0].chunk.text == "text of a0"
    assert hits[0].chunk.source == "d1.txt"
    assert hits[0].chunk.page == 1


async def test_vectors_are_compared_by_direction_not_length(store: VectorStore) -> None:
    await store.upsert("c", [chunk("long0", "d", (10.0, 0.0, 0.0)), chunk("short0", "d", (0.0, 0.1, 0.0))])
    hits = await store.search("c", (0.0, 5.0, 0.0), k=1)
    assert hits[0].chunk.id == "short0"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


async def test_k_and_min_score(store: VectorStore) -> None:
    await store.upsert("c", [chunk(f"x{i}", "d", unit(i * 20)) for i in range(5)])
    assert len(await store.search("c", unit(0), k=2)) == 2
    close = await store.search("c", unit(0), k=10, min_score=0.9)
    assert [h.chunk.id for h in close] == ["x0", "x1"]
    assert len(await store.search("c", unit(0), k=10)) == 5


async def test_filters(store: VectorStore) -> None:
    await store.upsert(
        "c",
        [
            chunk("a0", "d1", unit(0), lang="en"),
            chunk("b0", "d2", unit(5), lang="fr"),
            chunk("c0", "d3", unit(9)),
        ],
    )
    only_d2 = await store.search("c", unit(0), k=5, where=Filter(document_ids=("d2",)))
    assert [h.chunk.id for h in only_d2] == ["b0"]
    french = await store.search("c", unit(0), k=5, where=Filter(metadata={"lang": "fr"}))
    assert [h.chunk.id for h in french] == ["b0"]
    assert await store.count("c", Filter(document_ids=("d1", "d3"))) == 2


async def test_upsert_replaces_the_same_id(store: VectorStore) -> None:
    await store.upsert("c", [chunk("a0", "d1", unit(0))])
    await store.upsert("c", [chunk("a0", "d1", unit(90))])
    assert await store.count("c") == 1
    hits = await store.search("c", unit(90), k=1)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


async def test_delete_document_removes_all_its_chunks(store: VectorStore) -> None:
    await store.upsert(
        "c", [chunk("a0", "d1", unit(0)), chunk("a1", "d1", unit(1)), chunk("b0", "d2", unit(2))]
    )
    await store.delete_document("c", "d1")
    assert await store.count("c") == 1
    assert [h.chunk.document_id for h in await store.search("c", unit(0), k=5)] == ["d2"]
    await store.delete_document("c", "missing")
    await store.delete_document("never-written", "d2")


async def test_collections_are_separate(store: VectorStore) -> None:
    await store.upsert("one", [chunk("a0", "d1", unit(0))])
    assert await store.search("two", unit(0), k=3) == []
    assert await store.count("two") == 0
    assert await store.count("one") == 1


async def test_dimension_mismatch_is_invalid(store: VectorStore) -> None:
    await store.upsert("c", [chunk("a0", "d1", unit(0))])
    with pytest.raises(InvalidRequest):
        await store.upsert("c", [chunk("a1", "d1", (1.0, 0.0))])
    with pytest.raises(InvalidRequest):
        await store.search("c", (1.0, 0.0), k=1)


async def test_collections_keep_the_same_chunk_id_apart(store: VectorStore) -> None:
    await store.upsert("one", [chunk("a0", "d1", unit(0), lang="en")])
    await store.upsert("two", [chunk("a0", "d1", unit(90), lang="en")])
    assert (await store.search("one", unit(0), k=5))[0].score == pytest.approx(1.0, abs=1e-5)
    assert (await store.search("two", unit(90), k=5))[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.chunk.collection for h in await store.search("two", unit(0), k=5)] == ["two"]
    await store.delete_document("one", "d1")
    assert await store.count("one") == 0
    assert await store.count("two", Filter(document_ids=("d1",), metadata={"lang": "en"})) == 1


async def test_metadata_filters_on_int_and_bool(store: VectorStore) -> None:
    await store.upsert(
        "c",
        [
            Chunk(
                id="a0",
                document_id="d",
                collection="c",
                index=0,
                text="a",
                metadata={"n": 2, "ok": True},
                vector=unit(0),
            ),
            Chunk(
                id="b0",
                document_id="d",
                collection="c",
                index=0,
                text="b",
                metadata={"n": 3, "ok": False},
                vector=unit(1),
            ),
        ],
    )
    assert [h.chunk.id for h in await store.search("c", unit(0), k=5, where=Filter(metadata={"n": 3}))] == [
        "b0"
    ]
    assert await store.count("c", Filter(metadata={"ok": True, "n": 2})) == 1
    assert await store.count("c", Filter(metadata={"ok": True, "n": 3})) == 0
    hits = await store.search("c", unit(0), k=5, where=Filter(metadata={"ok": True}))
    assert [(h.chunk.id, dict(h.chunk.metadata)) for h in hits] == [("a0", {"n": 2, "ok": True})]


def terms(weights: dict[int, float]) -> SparseVector:
    return SparseVector(indices=tuple(weights), values=tuple(weights.values()))


async def test_sparse_search_scores_bm25(store: VectorStore) -> None:
    def sparse_chunk(chunk_id: str, document: str, weights: dict[int, float] | None) -> Chunk:
        sparse = None if weights is None else terms(weights)
        return Chunk(id=chunk_id, document_id=document, collection="c", index=0, text=chunk_id,
                     vector=unit(0), sparse=sparse)  # fmt: skip

    await store.upsert(
        "c",
        [
            sparse_chunk("a0", "d1", {1: 1.0, 2: 0.5}),
            sparse_chunk("b0", "d2", {2: 1.0, 3: 1.0}),
            sparse_chunk("c0", "d3", {3: 1.5}),
            sparse_chunk("e0", "d4", None),  # not found by sparse search, not counted in the IDF
        ],
    )
    # 3 chunks with terms; terms 2 and 3 are in 2 of them, term 1 in one
    common, rare = math.log((3 - 2 + 0.5) / (2 + 0.5) + 1), math.log((3 - 1 + 0.5) / (1 + 0.5) + 1)
    hits = await store.search_sparse("c", terms({2: 1.0, 3: 1.0}), k=5)
    assert [h.chunk.id for h in hits] == ["b0", "c0", "a0"]
    assert [h.score for h in hits] == pytest.approx([2 * common, 1.5 * common, 0.5 * common], rel=1e-5)
    assert hits[0].chunk.document_id == "d2"
    assert hits[0].chunk.collection == "c"
    (only,) = await store.search_sparse("c", terms({1: 2.0}), k=5)
    assert only.chunk.id == "a0"
    assert only.score == pytest.approx(2 * rare, rel=1e-5)
    assert [h.chunk.id for h in await store.search_sparse("c", terms({2: 1.0, 3: 1.0}), k=1)] == ["b0"]
    filtered = await store.search_sparse(
        "c", terms({2: 1.0, 3: 1.0}), k=5, where=Filter(document_ids=("d3", "d4"))
    )
    assert [h.chunk.id for h in filtered] == ["c0"]
    assert await store.search_sparse("c", terms({99: 1.0}), k=5) == []
    assert await store.search_sparse("c", SparseVector(), k=5) == []
    assert await store.search_sparse("never-written", terms({2: 1.0}), k=5) == []
    # another collection's chunks are not found (their IDF counts only in Qdrant: one physical collection)
    await store.upsert("other", [sparse_chunk("x0", "d9", {2: 1.0, 3: 1.0})])
    assert [h.chunk.id for h in await store.search_sparse("c", terms({2: 1.0, 3: 1.0}), k=5)] == [
        "b0",
        "c0",
        "a0",
    ]
    assert [h.chunk.id for h in await store.search_sparse("other", terms({3: 1.0}), k=5)] == ["x0"]


# -- PgVectorStore only -----------------------------------------------------------------------------------


@pytest.fixture
async def pg_store(pgvector_dsn: str, pgvector_table: str) -> AsyncIterator[VectorStore]:
    from mindfu_adapters.vector_store.pgvector import PgVectorStore

    made = PgVectorStore(pgvector_dsn, table=pgvector_table)
    yield made
    await made.aclose()


async def test_pgvector_dimension_is_fixed_per_table(pgvector_dsn: str, pgvector_table: str) -> None:
    from mindfu_adapters.vector_store.pgvector import PgVectorStore

    first = PgVectorStore(pgvector_dsn, table=pgvector_table)
    second = PgVectorStore(pgvector_dsn, table=pgvector_table)  # another process, say: nothing cached
    try:
        await first.upsert("c", [chunk("a0", "d1", unit(0))])
        with pytest.raises(InvalidRequest, match="dimension"):
            await second.upsert("other", [chunk("a0", "d1", (1.0, 0.0))])
        with pytest.raises(InvalidRequest, match="dimension"):
            await second.search("c", (1.0, 0.0, 0.0, 0.0), k=1)
        assert await second.count("c") == 1
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres@127.0.0.1:1/postgres",  # nothing listens on port 1
        "postgresql://postgres@/postgres?host=/nonexistent/mindfu-socket-dir",
    ],
)
async def test_pgvector_unreachable_server_is_upstream_unavailable(dsn: str) -> None:
    from mindfu_adapters.vector_store.pgvector import PgVectorStore

    store = PgVectorStore(dsn, table="chunks", connect_timeout=5)
    try:
        with pytest.raises(UpstreamUnavailable):
            await store.upsert("c", [chunk("a0", "d1", unit(0))])
        with pytest.raises(UpstreamUnavailable):
            await store.search("c", unit(0), k=1)
        with pytest.raises(UpstreamUnavailable):
            await store.count("c")
        with pytest.raises(UpstreamUnavailable):
            await store.delete_document("c", "d1")
    finally:
        await store.aclose()


async def test_pgvector_takes_a_sqlalchemy_url(pgvector_dsn: str, pgvector_table: str) -> None:
    from mindfu_adapters.vector_store.pgvector import PgVectorStore

    assert pgvector_dsn.startswith("postgresql://")
    store = PgVectorStore(
        pgvector_dsn.replace("postgresql://", "postgresql+asyncpg://", 1), table=pgvector_table
    )
    try:
        await store.upsert("c", [chunk("a0", "d1", unit(0))])
        assert await store.count("c") == 1
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("dsn", "table"),
    [
        ("postgresql://localhost/db", 'chunks"; DROP TABLE x; --'),
        ("postgresql://localhost/db", "1chunks"),
        ("postgresql://localhost/db", "c" * 64),
        ("postgresql://localhost/db", ""),
        ("sqlite+aiosqlite:///mindfu.db", "chunks"),
        ("localhost:5432", "chunks"),
    ],
)
def test_pgvector_rejects_bad_settings(dsn: str, table: str) -> None:
    from mindfu_adapters.vector_store.pgvector import PgVectorStore

    with pytest.raises(ConfigurationError):
        PgVectorStore(dsn, table=table)


async def test_pgvector_bad_values_are_invalid_requests(pg_store: VectorStore) -> None:
    with pytest.raises(InvalidRequest):
        await pg_store.upsert("c", [chunk("a0", "d1", (math.nan, 1.0, 0.0))])
    with pytest.raises(InvalidRequest):
        await pg_store.upsert(
            "c", [Chunk(id="a0", document_id="d", collection="c", index=0, text="nul\x00", vector=unit(0))]
        )
    with pytest.raises(InvalidRequest):
        await pg_store.upsert(
            "c",
            [
                Chunk(
                    id="a0",
                    document_id="d",
                    collection="c",
                    index=0,
                    text="t",
                    metadata={"when": object()},
                    vector=unit(0),
                )
            ],
        )
    assert await pg_store.count("c") == 0


async def test_pgvector_search_uses_the_hnsw_index(pgvector_dsn: str, pgvector_table: str) -> None:
    import asyncpg

    from mindfu_adapters.vector_store.pgvector import PgVectorStore

    store = PgVectorStore(pgvector_dsn, table=pgvector_table)
    await store.upsert("c", [chunk(f"x{i}", f"d{i % 10}", unit(i * 0.1)) for i in range(1000)])
    connection = await asyncpg.connect(pgvector_dsn)
    try:
        await connection.execute(f"ANALYZE {pgvector_table}")
        hits = await store.search("c", unit(0), k=3)
        assert [h.chunk.id for h in hits] == ["x0", "x1", "x2"]
        await store.aclose()  # a backend flushes its statistics when it exits
        index = f"{pgvector_table}_embedding_hnsw"
        deadline = time.monotonic() + 10
        scans = 0
        while not scans and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            scans = await connection.fetchval(
                "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = $1", index
            )
        assert scans, f"no scan of {index} was recorded"
    finally:
        await connection.close()
        await store.aclose()


async def test_pgvector_sparse_idf_counts_only_its_collection(pg_store: VectorStore) -> None:
    def with_terms(chunk_id: str, weights: dict[int, float]) -> Chunk:
        return Chunk(id=chunk_id, document_id="d", collection="c", index=0, text=chunk_id, vector=unit(0),
                     sparse=terms(weights))  # fmt: skip

    await pg_store.upsert("c", [with_terms("a0", {1: 1.0}), with_terms("b0", {2: 1.0})])
    (before,) = await pg_store.search_sparse("c", terms({1: 1.0}), k=5)
    await pg_store.upsert("other", [with_terms(f"x{i}", {1: 1.0}) for i in range(5)])
    (after,) = await pg_store.search_sparse("c", terms({1: 1.0}), k=5)
    assert after.score == pytest.approx(before.score)
    assert before.score == pytest.approx(math.log((2 - 1 + 0.5) / (1 + 0.5) + 1), rel=1e-6)
