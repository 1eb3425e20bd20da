"""InMemoryVectorStore: exact cosine search over numpy arrays, for library users, tests and small corpora."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from mindfu_core.domain.documents import Chunk, Filter, ScoredChunk, SparseVector
from mindfu_core.errors import InvalidRequest


def _matches(chunk: Chunk, where: Filter | None) -> bool:
    if where is None:
        return True
    if where.document_ids and chunk.document_id not in where.document_ids:
        return False
    return all(chunk.metadata.get(key) == value for key, value in where.metadata.items())


class _Collection:
    def __init__(self) -> None:
        self.chunks: dict[str, Chunk] = {}
        self.dimension: int | None = None
        self._ids: list[str] = []
        self._matrix: npt.NDArray[np.float32] | None = None

    def matrix(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        if self._matrix is None:
            self._ids = list(self.chunks)
            rows = [self.chunks[i].vector for i in self._ids]
            self._matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dimension or 0)
        return self._ids, self._matrix

    def changed(self) -> None:
        self._matrix = None


class InMemoryVectorStore:
    """A ``VectorStore`` held in this process; vectors are normalized on write, so search is a dot product."""

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}
        self._lock = asyncio.Lock()

    async def upsert(self, collection: str, chunks: Sequence[Chunk]) -> None:
        async with self._lock:
            store = self._collections.setdefault(collection, _Collection())
            for chunk in chunks:
                vector = np.asarray(chunk.vector, dtype=np.float32)
                if vector.ndim != 1 or not vector.size:
                    raise InvalidRequest(f"chunk {chunk.id} has no vector")
                if store.dimension is None:
                    store.dimension = int(vector.size)
                elif vector.size != store.dimension:
                    raise InvalidRequest(
                        f"vector of dimension {vector.size} does not fit collection {collection!r} "
                        f"(dimension {store.dimension})"
                    )
                norm = float(np.linalg.norm(vector))
                unit = vector / norm if norm else vector
                store.chunks[chunk.id] = replace(
                    chunk, collection=collection, vector=tuple(float(x) for x in unit)
                )
            store.changed()

    async def search(
        self,
        collection: str,
        vector: Sequence[float],
        *,
        k: int,
        min_score: float | None = None,
        where: Filter | None = None,
    ) -> list[ScoredChunk]:
        store = self._collections.get(collection)
        if store is None or not store.chunks or k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32)
        if query.size != store.dimension:
            raise InvalidRequest(
                f"query of dimension {query.size} does not fit collection {collection!r} "
                f"(dimension {store.dimension})"
            )
        norm = float(np.linalg.norm(query))
        ids, matrix = store.matrix()
        scores = matrix @ (query / norm if norm else query)
        hits: list[ScoredChunk] = []
        for position in np.argsort(-scores, kind="stable"):
            score = float(scores[position])
            if min_score is not None and score < min_score:
                break
            chunk = store.chunks[ids[position]]
            if _matches(chunk, where):
                hits.append(ScoredChunk(chunk=chunk, score=score))
                if len(hits) == k:
                    break
        return hits

    async def search_sparse(
        self, collection: str, vector: SparseVector, *, k: int, where: Filter | None = None
    ) -> list[ScoredChunk]:
        store = self._collections.get(collection)
        if store is None or k <= 0 or not vector.indices:
            return []
        query = dict(zip(vector.indices, vector.values, strict=True))
        sparse = [c for c in store.chunks.values() if c.sparse is not None]
        frequency = dict.fromkeys(query, 0)
        for chunk in sparse:
            for index in chunk.sparse.indices if chunk.sparse else ():
                if index in frequency:
                    frequency[index] += 1
        total = len(sparse)
        idf = {i: math.log((total - n + 0.5) / (n + 0.5) + 1) for i, n in frequency.items()}
        scored = []
        for chunk in sparse:
            if chunk.sparse is None or not _matches(chunk, where):
                continue
            score = sum(
                value * query[index] * idf[index]
                for index, value in zip(chunk.sparse.indices, chunk.sparse.values, strict=True)
                if index in query
            )
            if score > 0:
                scored.append(ScoredChunk(chunk=chunk, score=score))
        scored.sort(key=lambda hit: -hit.score)
        return scored[:k]

    async def delete_document(self, collection: str, document_id: str) -> None:
        async with self._lock:
            store = self._collections.get(collection)
            if store is None:
                return
            for chunk_id in [i for i, c in store.chunks.items() if c.document_id == document_id]:
                del store.chunks[chunk_id]
            store.changed()

    async def count(self, collection: str, where: Filter | None = None) -> int:
        store = self._collections.get(collection)
        if store is None:
            return 0
        return sum(1 for chunk in store.chunks.values() if _matches(chunk, where))
