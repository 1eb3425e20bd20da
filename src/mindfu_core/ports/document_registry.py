"""The DocumentRegistry port: the record of every ingested document."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mindfu_core.domain.documents import Document


@runtime_checkable
class DocumentRegistry(Protocol):
    """Documents by id, and by content hash within a collection (for duplicate detection)."""

    async def add(self, document: Document) -> None:
        """Record ``document``; ``Conflict`` if its id or (collection, sha256) is already recorded."""
        ...

    async def get(self, document_id: str) -> Document | None: ...

    async def find_by_hash(self, collection: str, sha256: str) -> Document | None: ...

    async def list(
        self, *, collection: str | None = None, limit: int = 50, offset: int = 0, tenant: str | None = None
    ) -> list[Document]:
        """Newest first; ``collection`` is a stored name (``stored_collection``), ``tenant`` keeps to the
        collections stored for that tenant (None: every tenant's)."""
        ...

    async def delete(self, document_id: str) -> bool:
        """Remove the record; false if there was none."""
        ...
