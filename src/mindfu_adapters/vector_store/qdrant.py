"""QdrantVectorStore: qdrant-client in local on-disk mode, in memory, or against a server — the same code.

One physical Qdrant collection holds every chunk embedded by one model; MindFu's (logical) collections
are a keyword payload field with an index, so a tenant is a filter, not a collection.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from mindfu_core.domain.documents import Chunk, Filter, ScoredChunk, SparseVector
from mindfu_core.errors import InvalidRequest, UpstreamUnavailable

_POINT_NAMESPACE = uuid.UUID("5b0f3f6e-4a56-4c52-9d43-3f0f86b0a6a1")
_INDEXED_FIELDS = ("collection", "document_id")
#: The named sparse vector (BM25 term weights; Qdrant multiplies in the IDF it keeps per term).
SPARSE = "bm25"


def point_id(collection: str, chunk_id: str) -> str:
    """Qdrant wants UUIDs or integers; this one is stable per (collection, chunk id)."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{collection}\x00{chunk_id}"))


class QdrantVectorStore:
    """A ``VectorStore`` over Qdrant. ``location`` is ``":memory:"``, ``url`` a server, ``path`` a folder."""

    def __init__(
        self,
        name: str,
        *,
        path: str | None = None,
        url: str | None = None,
        location: str | None = None,
        api_key: str | None = None,
    ) -> None:
        from qdrant_client import AsyncQdrantClient

        if sum(x is not None for x in (path, url, location)) != 1:
            raise InvalidRequest("give exactly one of path, url or location for Qdrant")
        self._name = name
        self._server = url is not None  # local mode has no payload indexes (it scans)
        try:
            self._client = AsyncQdrantClient(path=path, url=url, location=location, api_key=api_key)
        except RuntimeError as exc:  # local mode admits one process per folder
            raise UpstreamUnavailable(
                f"the Qdrant folder {path} is in use by another MindFu process (local mode admits one); "
                "stop it, or go through it (`--server URL` on the command line), or use a Qdrant server"
            ) from exc
        self._dimension: int | None = None
        self._ready = asyncio.Lock()

    async def _existing_dimension(self) -> int | None:
        if self._dimension is not None:
            return self._dimension
        if not await self._client.collection_exists(self._name):
            return None
        info = await self._client.get_collection(self._name)
        vectors: Any = info.config.params.vectors
        self._dimension = int(vectors.size)
        return self._dimension

    async def _ensure(self, dimension: int) -> None:
        from qdrant_client import models

        async with self._ready:
            existing = await self._existing_dimension()
            if existing is None:
                await self._client.create_collection(
                    self._name,
                    vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                )
                for field in _INDEXED_FIELDS if self._server else ():
                    await self._client.create_payload_index(
                        self._name, field_name=field, field_schema=models.PayloadSchemaType.KEYWORD
                    )
                self._dimension = dimension
            elif existing != dimension:
                raise InvalidRequest(
                    f"vectors of dimension {dimension} do not fit Qdrant collection {self._name!r} "
                    f"(dimension {existing})"
                )

    def _filter(self, collection: str, where: Filter | None) -> Any:
        from qdrant_client import models

        must: list[Any] = [models.FieldCondition(key="collection", match=models.MatchValue(value=collection))]
        if where is not None:
            if where.document_ids:
                must.append(
                    models.FieldCondition(
                        key="document_id", match=models.MatchAny(any=list(where.document_ids))
                    )
                )
            for key, value in where.metadata.items():
                must.append(
                    models.FieldCondition(key=f"metadata.{key}", match=models.MatchValue(value=value))
                )
        return models.Filter(must=must)

    async def upsert(self, collection: str, chunks: Sequence[Chunk]) -> None:
        from qdrant_client import models

        if not chunks:
            return
        dimension = len(chunks[0].vector)
        if not dimension or any(len(c.vector) != dimension for c in chunks):
            raise InvalidRequest("every chunk needs a vector, all of the same dimension")
        await self._guard(self._ensure(dimension))
        points = [
            models.PointStruct(
                id=point_id(collection, chunk.id),
                vector=_vectors(chunk),
                payload={
                    "chunk_id": chunk.id,
                    "collection": collection,
                    "document_id": chunk.document_id,
                    "index": chunk.index,
                    "text": chunk.text,
                    "source": chunk.source,
                    "page": chunk.page,
                    "metadata": dict(chunk.metadata),
                },
            )
            for chunk in chunks
        ]
        await self._guard(self._client.upsert(self._name, points=points, wait=True))

    async def search(
        self,
        collection: str,
        vector: Sequence[float],
        *,
        k: int,
        min_score: float | None = None,
        where: Filter | None = None,
    ) -> list[ScoredChunk]:
        existing = await self._guard(self._existing_dimension())
        if existing is None or k <= 0:
            return []
        if len(vector) != existing:
            raise InvalidRequest(f"query of dimension {len(vector)} does not fit dimension {existing}")
        response = await self._guard(
            self._client.query_points(
                self._name,
                query=list(vector),
                query_filter=self._filter(collection, where),
                limit=k,
                score_threshold=min_score,
                with_payload=True,
            )
        )
        return [
            ScoredChunk(chunk=_chunk(point.payload or {}), score=float(point.score))
            for point in response.points
        ]

    async def search_sparse(
        self, collection: str, vector: SparseVector, *, k: int, where: Filter | None = None
    ) -> list[ScoredChunk]:
        from qdrant_client import models

        if k <= 0 or not vector.indices or await self._guard(self._existing_dimension()) is None:
            return []
        response = await self._guard(
            self._client.query_points(
                self._name,
                query=models.SparseVector(indices=list(vector.indices), values=list(vector.values)),
                using=SPARSE,
                query_filter=self._filter(collection, where),
                limit=k,
                with_payload=True,
            )
        )
        return [
            ScoredChunk(chunk=_chunk(point.payload or {}), score=float(point.score))
            for point in response.points
        ]

    async def delete_document(self, collection: str, document_id: str) -> None:
        from qdrant_client import models

        if await self._guard(self._existing_dimension()) is None:
            return
        selector = models.FilterSelector(filter=self._filter(collection, Filter(document_ids=(document_id,))))
        await self._guard(self._client.delete(self._name, points_selector=selector, wait=True))

    async def count(self, collection: str, where: Filter | None = None) -> int:
        if await self._guard(self._existing_dimension()) is None:
            return 0
        result = await self._guard(
            self._client.count(self._name, count_filter=self._filter(collection, where), exact=True)
        )
        return int(result.count)

    async def aclose(self) -> None:
        await self._client.close()

    async def _guard(self, call: Any) -> Any:
        """Await ``call``; Qdrant's own errors leave this adapter as MindFu errors."""
        try:
            return await call
        except InvalidRequest:
            raise
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise UpstreamUnavailable(f"Qdrant is unreachable: {exc}") from exc
        except Exception as exc:
            from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

            if isinstance(exc, ResponseHandlingException | UnexpectedResponse):
                raise UpstreamUnavailable(f"Qdrant failed: {exc}") from exc
            if isinstance(exc, ValueError):  # local mode reports bad input this way
                raise InvalidRequest(f"Qdrant rejected the request: {exc}") from exc
            raise


def _vectors(chunk: Chunk) -> Any:
    from qdrant_client import models

    if chunk.sparse is None or not chunk.sparse.indices:
        return {"": list(chunk.vector)}
    sparse = models.SparseVector(indices=list(chunk.sparse.indices), values=list(chunk.sparse.values))
    return {"": list(chunk.vector), SPARSE: sparse}


def _chunk(payload: dict[str, Any]) -> Chunk:
    return Chunk(
        id=str(payload["chunk_id"]),
        document_id=str(payload["document_id"]),
        collection=str(payload["collection"]),
        index=int(payload["index"]),
        text=str(payload["text"]),
        source=str(payload.get("source") or ""),
        page=payload.get("page"),
        metadata=dict(payload.get("metadata") or {}),
    )
