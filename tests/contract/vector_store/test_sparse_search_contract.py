"""Lexical (BM25) search through the VectorStore port, for every adapter that keeps sparse vectors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mindfu_adapters.embedder.bm25 import Bm25SparseEncoder
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_adapters.vector_store.qdrant import QdrantVectorStore
from mindfu_core.domain.documents import Chunk, Filter
from mindfu_core.ports.vector_store import VectorStore

ADAPTERS: dict[str, Callable[[Path], VectorStore]] = {
    "memory": lambda _: InMemoryVectorStore(),
    "qdrant-memory": lambda _: QdrantVectorStore("sparse-test", location=":memory:"),
    "qdrant-disk": lambda tmp: QdrantVectorStore("sparse-test", path=str(tmp / "qdrant")),
}
TEXTS = {
    "cats": "Cats sleep most of the day and hunt mice at night.",
    "dogs": "Dogs bark at the mailman and fetch sticks in the park.",
    "cats-dogs": "Some cats and dogs live together peacefully.",
    "astro": "Neutron stars spin rapidly and emit beams of radiation.",
}
ENCODER = Bm25SparseEncoder()


@pytest.fixture(params=list(ADAPTERS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    made = ADAPTERS[request.param](tmp_path)
    sparse = await ENCODER.encode_documents(list(TEXTS.values()))
    chunks = [
        Chunk(
            id=f"{name}:0",
            document_id=name,
            collection="c",
            index=0,
            text=text,
            metadata={"kind": "astro" if name == "astro" else "pets"},
            vector=(1.0, float(i), 0.5),
            sparse=terms,
        )
        for i, ((name, text), terms) in enumerate(zip(TEXTS.items(), sparse, strict=True))
    ]
    await made.upsert("c", chunks)
    yield made
    aclose = getattr(made, "aclose", None)
    if aclose is not None:
        await aclose()


async def test_terms_rank_by_bm25(store: VectorStore) -> None:
    hits = await store.search_sparse("c", await ENCODER.encode_query("sleeping cats"), k=5)
    assert [h.chunk.document_id for h in hits] == ["cats", "cats-dogs"]
    assert hits[0].score > hits[1].score > 0
    assert hits[0].chunk.text == TEXTS["cats"]


async def test_stemming_and_rarer_terms_weigh_more(store: VectorStore) -> None:
    hits = await store.search_sparse("c", await ENCODER.encode_query("neutron star spinning"), k=5)
    assert [h.chunk.document_id for h in hits] == ["astro"]
    both = await store.search_sparse("c", await ENCODER.encode_query("dogs and the mailman"), k=5)
    assert [h.chunk.document_id for h in both][:2] == ["dogs", "cats-dogs"]


async def test_filters_k_and_unknown_terms(store: VectorStore) -> None:
    query = await ENCODER.encode_query("cats dogs")
    assert len(await store.search_sparse("c", query, k=1)) == 1
    only = await store.search_sparse("c", query, k=5, where=Filter(document_ids=("dogs",)))
    assert [h.chunk.document_id for h in only] == ["dogs"]
    assert await store.search_sparse("c", query, k=5, where=Filter(metadata={"kind": "astro"})) == []
    assert await store.search_sparse("c", await ENCODER.encode_query("zebra"), k=5) == []
    assert await store.search_sparse("other", query, k=5) == []


async def test_deleted_documents_are_not_found(store: VectorStore) -> None:
    await store.delete_document("c", "cats")
    hits = await store.search_sparse("c", await ENCODER.encode_query("cats"), k=5)
    assert [h.chunk.document_id for h in hits] == ["cats-dogs"]


def test_a_qdrant_folder_in_use_is_a_clear_error(tmp_path: Path) -> None:
    from mindfu_core.errors import UpstreamUnavailable

    holder = QdrantVectorStore("x", path=str(tmp_path / "q"))
    with pytest.raises(UpstreamUnavailable, match="in use by another MindFu process"):
        QdrantVectorStore("x", path=str(tmp_path / "q"))
    assert holder is not None
