"""InMemoryDocumentRegistry: the registry for library users and tests, in this process only."""

from __future__ import annotations

import asyncio

from mindfu_core.domain.documents import Document, of_tenant
from mindfu_core.errors import Conflict


class InMemoryDocumentRegistry:
    """A ``DocumentRegistry`` held in a dict."""

    def __init__(self) -> None:
        self._documents: dict[str, Document] = {}
        self._lock = asyncio.Lock()

    async def add(self, document: Document) -> None:
        async with self._lock:
            if document.id in self._documents:
                raise Conflict(f"document {document.id} is already recorded")
            if await self.find_by_hash(document.collection, document.sha256) is not None:
                raise Conflict(f"collection {document.collection!r} already holds this content")
            self._documents[document.id] = document

    async def get(self, document_id: str) -> Document | None:
        return self._documents.get(document_id)

    async def find_by_hash(self, collection: str, sha256: str) -> Document | None:
        return next(
            (d for d in self._documents.values() if d.collection == collection and d.sha256 == sha256), None
        )

    async def list(
        self, *, collection: str | None = None, limit: int = 50, offset: int = 0, tenant: str | None = None
    ) -> list[Document]:
        matching = [
            d
            for d in self._documents.values()
            if (collection is None or d.collection == collection)
            and (tenant is None or of_tenant(d.collection, tenant))
        ]
        matching.sort(key=lambda d: d.created_at, reverse=True)
        return matching[offset : offset + limit]

    async def delete(self, document_id: str) -> bool:
        async with self._lock:
            return self._documents.pop(document_id, None) is not None
