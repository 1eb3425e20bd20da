"""SqlDocumentRegistry: the document registry in the ``documents`` table (SQLite or PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mindfu_adapters.store.sql import Database
from mindfu_adapters.store.tables import documents
from mindfu_core.domain.documents import TENANT_SEPARATOR, Document, stored_collection
from mindfu_core.domain.principals import DEFAULT_TENANT


class SqlDocumentRegistry:
    """A ``DocumentRegistry`` over the shared ``Database``; (collection, sha256) is unique in SQL."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, document: Document) -> None:
        async with self._db.transaction(f"recording document {document.id}") as connection:
            await connection.execute(documents.insert().values(**_row(document)))

    async def get(self, document_id: str) -> Document | None:
        async with self._db.connection(f"reading document {document_id}") as connection:
            result = await connection.execute(documents.select().where(documents.c.id == document_id))
            row = result.mappings().first()
        return None if row is None else _document(row)

    async def find_by_hash(self, collection: str, sha256: str) -> Document | None:
        query = documents.select().where(documents.c.collection == collection, documents.c.sha256 == sha256)
        async with self._db.connection("looking up a content hash") as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _document(row)

    async def list(
        self, *, collection: str | None = None, limit: int = 50, offset: int = 0, tenant: str | None = None
    ) -> list[Document]:
        query = documents.select().order_by(documents.c.created_at.desc(), documents.c.id)
        if collection is not None:
            query = query.where(documents.c.collection == collection)
        if tenant == DEFAULT_TENANT:
            query = query.where(~documents.c.collection.contains(TENANT_SEPARATOR, autoescape=True))
        elif tenant is not None:
            prefix = stored_collection(tenant, "")
            query = query.where(documents.c.collection.startswith(prefix, autoescape=True))
        async with self._db.connection("listing documents") as connection:
            rows = (await connection.execute(query.limit(limit).offset(offset))).mappings().all()
        return [_document(row) for row in rows]

    async def delete(self, document_id: str) -> bool:
        async with self._db.transaction(f"deleting document {document_id}") as connection:
            result = await connection.execute(documents.delete().where(documents.c.id == document_id))
        return bool(result.rowcount)


def _row(document: Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "collection": document.collection,
        "name": document.name,
        "sha256": document.sha256,
        "media_type": document.media_type,
        "size_bytes": document.size_bytes,
        "chunk_count": document.chunk_count,
        "embedding_model": document.embedding_model,
        "title": document.title,
        "metadata": dict(document.metadata),
        "created_at": document.created_at,
    }


def _document(row: Any) -> Document:
    created: datetime = row["created_at"]
    if created.tzinfo is None:  # SQLite keeps no zone; MindFu writes UTC
        created = created.replace(tzinfo=UTC)
    return Document(
        id=row["id"],
        collection=row["collection"],
        name=row["name"],
        sha256=row["sha256"],
        media_type=row["media_type"],
        size_bytes=row["size_bytes"],
        chunk_count=row["chunk_count"],
        embedding_model=row["embedding_model"],
        title=row["title"],
        metadata=dict(row["metadata"] or {}),
        created_at=created,
    )
