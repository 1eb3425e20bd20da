"""The VectorStore port: chunks with vectors, searched by cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from mindfu_core.domain.documents import Chunk, Filter, ScoredChunk, SparseVector


@runtime_checkable
class VectorStore(Protocol):
    """Stores chunks per collection; upserting a chunk id again replaces it."""

    async def upsert(self, collection: str, chunks: Sequence[Chunk]) -> None:
        """Insert or replace ``chunks`` (each carries its vector)."""
        ...

    async def search(
        self,
        collection: str,
        vector: Sequence[float],
        *,
        k: int,
        min_score: float | None = None,
        where: Filter | None = None,
    ) -> list[ScoredChunk]:
        """The ``k`` chunks most similar to ``vector``, best first, at or above ``min_score``."""
        ...

    async def search_sparse(
        self, collection: str, vector: SparseVector, *, k: int, where: Filter | None = None
    ) -> list[ScoredChunk]:
        """The ``k`` chunks with the highest BM25 score for the query terms in ``vector`` (term weights of
        stored chunks times the terms' inverse document frequency), best first; chunks stored without a
        sparse vector are not found here. IDF is counted over the queried collection (Qdrant counts the
        whole physical collection, every tenant: the ranking within a tenant can differ slightly)."""
        ...

    async def delete_document(self, collection: str, document_id: str) -> None:
        """Remove every chunk of ``document_id``; removing a missing document is not an error."""
        ...

    async def count(self, collection: str, where: Filter | None = None) -> int:
        """How many chunks the collection holds (0 for a collection never written)."""
        ...
