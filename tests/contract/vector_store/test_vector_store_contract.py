"""The VectorStore contract, run against every adapter (in-memory now; Qdrant and pgvector join it)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_adapters.vector_store.qdrant import QdrantVectorStore
from mindfu_core.domain.documents import Chunk, Filter
from mindfu_core.errors import InvalidRequest
from mindfu_core.ports.vector_store import VectorStore


def _qdrant_memory(tmp_path: Path) -> VectorStore:
    return QdrantVectorStore("chunks-test", location=":memory:")


def _qdrant_disk(tmp_path: Path) -> VectorStore:
    return QdrantVectorStore("chunks-test", path=str(tmp_path / "qdrant"))


ADAPTERS: dict[str, Callable[[Path], VectorStore]] = {
    "memory": lambda _: InMemoryVectorStore(),
    "qdrant-memory": _qdrant_memory,
    "qdrant-disk": _qdrant_disk,
}


@pytest.fixture(params=list(ADAPTERS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    made: VectorStore = ADAPTERS[request.param](tmp_path)
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
