"""IngestionService on in-memory adapters: dedup, payloads, idempotency, failure cleanup, delete."""

from __future__ import annotations

from typing import Any

import pytest

from mindfu_adapters.parser.auto import AutoParser
from mindfu_adapters.registry.memory import InMemoryDocumentRegistry
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_core.domain.documents import Chunk, ChunkingPolicy
from mindfu_core.errors import NotFound, PayloadTooLarge, UnprocessableContent
from mindfu_core.services.ingestion import IngestionLimits, IngestionService
from tests.fakes import HashEmbedder
from tests.fixtures.documents import make_pdf

FACT = "The Zorblax reactor on Kepler station runs at 451 kelvin."


def service(**kw: Any) -> tuple[IngestionService, InMemoryVectorStore, InMemoryDocumentRegistry]:
    store = kw.pop("store", InMemoryVectorStore())
    registry = InMemoryDocumentRegistry()
    built = IngestionService(
        parser=AutoParser(),
        embedder=kw.pop("embedder", HashEmbedder()),
        store=store,
        registry=registry,
        policy=ChunkingPolicy(size=120, overlap=20),
        **kw,
    )
    return built, store, registry


async def test_pdf_is_chunked_embedded_stored_and_recorded() -> None:
    ingest, store, registry = service()
    data = make_pdf(["Introduction to the station. " * 8, FACT])
    result = await ingest.ingest(data, filename="station.pdf", collection="ops", metadata={"team": "blue"})
    document = result.document
    assert not result.duplicate
    assert document.media_type == "application/pdf"
    assert document.chunk_count == await store.count("ops") > 2
    assert document.embedding_model == "hash-bow"
    assert await registry.get(document.id) == document
    query = (await HashEmbedder().embed(["Zorblax reactor kelvin"]))[0]
    (best,) = await store.search("ops", query, k=1)
    assert "451 kelvin" in best.chunk.text
    assert best.chunk.page == 2
    assert best.chunk.source == "station.pdf"
    assert best.chunk.document_id == document.id
    assert best.chunk.metadata == {"team": "blue"}


async def test_same_bytes_again_is_a_duplicate_and_writes_nothing() -> None:
    embedder = HashEmbedder()
    ingest, store, _ = service(embedder=embedder)
    first = await ingest.ingest(FACT.encode(), filename="a.txt")
    calls = embedder.calls
    again = await ingest.ingest(FACT.encode(), filename="renamed.txt")
    assert again.duplicate
    assert again.document == first.document
    assert embedder.calls == calls
    assert await store.count("default") == first.document.chunk_count
    other = await ingest.ingest(FACT.encode(), filename="a.txt", collection="elsewhere")
    assert not other.duplicate


async def test_a_failure_halfway_leaves_no_chunks_and_a_retry_succeeds() -> None:
    class FailingRegistry(InMemoryDocumentRegistry):
        async def add(self, document: Any) -> None:
            raise RuntimeError("database down")

    store = InMemoryVectorStore()
    broken = IngestionService(
        parser=AutoParser(),
        embedder=HashEmbedder(),
        store=store,
        registry=FailingRegistry(),
        policy=ChunkingPolicy(size=64, overlap=8),
        limits=IngestionLimits(batch_size=2),
    )
    with pytest.raises(RuntimeError):
        await broken.ingest((FACT + " ").encode() * 10, filename="f.txt")
    assert await store.count("default") == 0
    working, _, _ = service(store=store)
    result = await working.ingest((FACT + " ").encode() * 10, filename="f.txt")
    assert await store.count("default") == result.document.chunk_count


async def test_reingesting_after_a_crash_overwrites_instead_of_duplicating() -> None:
    ingest, store, registry = service()
    result = await ingest.ingest(FACT.encode() * 20, filename="f.txt")
    await registry.delete(result.document.id)  # as if the record write had been lost
    again = await ingest.ingest(FACT.encode() * 20, filename="f.txt")
    assert again.document.id == result.document.id
    assert await store.count("default") == again.document.chunk_count


async def test_delete_removes_chunks_and_record() -> None:
    ingest, store, registry = service()
    keep = await ingest.ingest(b"Something else entirely.", filename="keep.txt")
    gone = await ingest.ingest(FACT.encode(), filename="gone.txt")
    await ingest.delete(gone.document.id)
    assert await registry.get(gone.document.id) is None
    assert await store.count("default") == keep.document.chunk_count
    with pytest.raises(NotFound):
        await ingest.delete(gone.document.id)
    assert [d.id for d in (await ingest.list()).items] == [keep.document.id]


async def test_limits_and_empty_documents() -> None:
    ingest, _, _ = service(limits=IngestionLimits(max_bytes=100))
    with pytest.raises(PayloadTooLarge):
        await ingest.ingest(b"x" * 101, filename="big.txt")
    roomy, _, _ = service()
    with pytest.raises(UnprocessableContent):
        await roomy.ingest(b"  \n ", filename="blank.txt")


async def test_text_ingestion_and_chunk_ids() -> None:
    ingest, store, _ = service()
    result = await ingest.ingest_text(FACT * 5, name="inline", metadata={"k": "v"})
    hits = await store.search("default", (await HashEmbedder().embed([FACT]))[0], k=50)
    ids = sorted(hit.chunk.id for hit in hits)
    assert ids == sorted(f"{result.document.id}:{i}" for i in range(result.document.chunk_count))
    assert all(isinstance(hit.chunk, Chunk) for hit in hits)
