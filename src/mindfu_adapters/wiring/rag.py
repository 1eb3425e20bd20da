"""Factories of the RAG stack the container's providers call: embedder, vector store, sparse encoder,
parser and the retrieval defaults, each picked from settings (adapter modules imported only when chosen)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mindfu_adapters.settings import Settings
from mindfu_core.domain.closing import aclose
from mindfu_core.domain.retrieval import RetrievalOptions
from mindfu_core.errors import ConfigurationError
from mindfu_core.ports.embedder import Embedder
from mindfu_core.ports.parser import DocumentParser
from mindfu_core.ports.sparse_encoder import SparseEncoder
from mindfu_core.ports.vector_store import VectorStore


def embedder(settings: Settings, *, hub_cache: Path) -> Embedder:
    embedding = settings.embedding
    if embedding.backend == "sentence_transformers":
        from mindfu_adapters.embedder.sentence_transformers import SentenceTransformersEmbedder

        return SentenceTransformersEmbedder(
            embedding.model_dir, batch_size=embedding.batch_size, threads=embedding.threads
        )
    from mindfu_adapters.embedder.fastembed import DEFAULT_MODEL_NAME, FastEmbedEmbedder
    from mindfu_adapters.embedder.prepare import prepared_model_dir

    if embedding.model_dir is None and embedding.model_name != DEFAULT_MODEL_NAME:
        return FastEmbedEmbedder(
            model_name=embedding.model_name,
            batch_size=embedding.batch_size,
            threads=embedding.threads,
            hub_cache=hub_cache,
        )
    return FastEmbedEmbedder(
        embedding.model_dir or prepared_model_dir(settings.data_dir.expanduser()),
        embedding.model_name,
        batch_size=embedding.batch_size,
        threads=embedding.threads,
    )


def store_name(model_id: str) -> str:
    """The physical collection (Qdrant) or table (pgvector) of one embedding model's vectors."""
    return "mindfu_chunks_" + re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")


async def vector_store_resource(settings: Settings, embedder: Embedder) -> AsyncIterator[VectorStore]:
    config = settings.vector_store
    name = config.name or store_name(embedder.model_id)
    store: Any
    if config.backend == "memory":
        from mindfu_adapters.vector_store.memory import InMemoryVectorStore

        store = InMemoryVectorStore()
    elif config.backend == "pgvector":
        from mindfu_adapters.vector_store.pgvector import PgVectorStore

        dsn = config.dsn or settings.database.url
        if not dsn:
            raise ConfigurationError("the pgvector store needs MINDFU_VECTOR_STORE__DSN (a PostgreSQL URL)")
        store = PgVectorStore(dsn, table=name)
    else:
        from mindfu_adapters.vector_store.qdrant import QdrantVectorStore

        api_key = config.api_key.get_secret_value() if config.api_key else None
        if config.url:
            store = QdrantVectorStore(name, url=config.url, api_key=api_key)
        elif config.in_memory:
            store = QdrantVectorStore(name, location=":memory:")
        else:
            path = (config.path or settings.data_dir / "qdrant").expanduser()
            path.mkdir(parents=True, exist_ok=True)
            store = QdrantVectorStore(name, path=str(path))
    try:
        yield store
    finally:
        await aclose(store)


def sparse_encoder(settings: Settings) -> SparseEncoder | None:
    if not settings.rag.sparse_index:
        if settings.rag.hybrid:
            raise ConfigurationError("MINDFU_RAG__HYBRID needs MINDFU_RAG__SPARSE_INDEX=true")
        return None
    from mindfu_adapters.embedder.bm25 import Bm25SparseEncoder

    return Bm25SparseEncoder(language=settings.rag.bm25_language)


def parser() -> DocumentParser:
    from mindfu_adapters.parser.auto import AutoParser

    return AutoParser()


def retrieval_defaults(settings: Settings) -> RetrievalOptions:
    rag = settings.rag
    return RetrievalOptions(
        enabled=rag.enabled,
        top_k=rag.top_k,
        min_score=rag.min_score,
        collection=rag.collection,
        hybrid=rag.hybrid,
    )
