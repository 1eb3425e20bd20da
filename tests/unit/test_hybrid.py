"""BM25 sparse encoding, reciprocal rank fusion, and hybrid retrieval through the Retriever."""

from __future__ import annotations

import pytest

from mindfu_adapters.embedder.bm25 import Bm25SparseEncoder
from mindfu_adapters.parser.auto import AutoParser
from mindfu_adapters.registry.memory import InMemoryDocumentRegistry
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_core.domain.documents import Chunk, ScoredChunk
from mindfu_core.domain.retrieval import RetrievalOptions, RetrievalOverrides
from mindfu_core.errors import ConfigurationError, InvalidRequest
from mindfu_core.services.ingestion import IngestionService
from mindfu_core.services.retrieval import RRF_K, Retriever, fuse
from tests.fakes import HashEmbedder


def hit(chunk_id: str, score: float = 0.5) -> ScoredChunk:
    return ScoredChunk(
        chunk=Chunk(id=chunk_id, document_id="d", collection="c", index=0, text=""), score=score
    )


def test_fusion_rewards_agreement() -> None:
    fused = fuse([[hit("a"), hit("b"), hit("c")], [hit("c"), hit("d"), hit("b")]], k=3)
    assert [h.chunk.id for h in fused] == ["c", "b", "a"]
    assert fused[0].score == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert fuse([[], []], k=3) == []


async def test_bm25_weights_saturate_and_normalize_length() -> None:
    encoder = Bm25SparseEncoder(average_length=10)
    once, thrice = await encoder.encode_documents(["quasar", "quasar quasar quasar"])
    assert once.indices == thrice.indices
    assert once.values[0] < thrice.values[0] < once.values[0] * 3  # saturating term frequency
    short, long = await encoder.encode_documents(["quasar glow", "quasar " + "filler " * 40])
    weight = dict(zip(short.indices, short.values, strict=True))[once.indices[0]]
    assert weight > dict(zip(long.indices, long.values, strict=True))[once.indices[0]]
    assert encoder.terms("The Runners were RUNNING") == ["runner", "run"]
    assert (await encoder.encode_query("the of and")).indices == ()
    with pytest.raises(ConfigurationError):
        Bm25SparseEncoder(language="klingon")


async def test_hybrid_finds_exact_terms_that_dense_misses() -> None:
    # the hash embedder is a stand-in for a dense model that misses rare identifiers
    embedder, store, encoder = HashEmbedder(dimension=8), InMemoryVectorStore(), Bm25SparseEncoder()
    service = IngestionService(
        parser=AutoParser(),
        embedder=embedder,
        store=store,
        registry=InMemoryDocumentRegistry(),
        sparse=encoder,
    )
    for i in range(30):
        await service.ingest_text(f"generic filler text number {i} about nothing special", name=f"f{i}")
    target = await service.ingest_text("error code XJ-9042 means the flux capacitor overheated", name="t")
    retriever = Retriever(embedder, store, sparse=encoder, defaults=RetrievalOptions(min_score=None))
    lexical = await retriever.search("XJ-9042", RetrievalOptions(top_k=2, min_score=None, hybrid=True))
    assert target.document.id in [h.chunk.document_id for h in lexical]
    assert retriever.options(RetrievalOverrides(hybrid=True)).hybrid is True


async def test_hybrid_without_a_sparse_encoder_is_refused() -> None:
    retriever = Retriever(HashEmbedder(), InMemoryVectorStore())
    with pytest.raises(InvalidRequest, match="hybrid"):
        retriever.options(RetrievalOverrides(hybrid=True))
    with pytest.raises(InvalidRequest):
        Retriever(HashEmbedder(), InMemoryVectorStore(), defaults=RetrievalOptions(hybrid=True))
