"""Ingestion: size check, SHA-256 dedup, parse, chunk, embed in batches, upsert, record — all or nothing."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from mindfu_core.domain.documents import (
    Chunk,
    ChunkingPolicy,
    Document,
    IngestResult,
    SparseVector,
    check_collection,
    of_tenant,
    stored_collection,
    visible_collection,
)
from mindfu_core.domain.pages import Page, cursor_offset, offset_cursor, page_of
from mindfu_core.domain.parsing import ParsedDocument
from mindfu_core.domain.principals import DEFAULT_TENANT
from mindfu_core.domain.text import check_json_text, check_text
from mindfu_core.errors import InvalidRequest, NotFound, PayloadTooLarge, UnprocessableContent
from mindfu_core.ports.document_registry import DocumentRegistry
from mindfu_core.ports.embedder import Embedder
from mindfu_core.ports.parser import DocumentParser
from mindfu_core.ports.sparse_encoder import SparseEncoder
from mindfu_core.ports.vector_store import VectorStore
from mindfu_core.services.chunking import split_pages, whole_text

_DOCUMENT_NAMESPACE = uuid.UUID("0c3b1a77-2f0e-4d8e-9a51-6f1f3c2b9e40")


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestionLimits:
    """Upload size limit and embedding batch size."""

    max_bytes: int = 50 * 1024 * 1024
    batch_size: int = 64


def document_id_for(collection: str, sha256: str) -> str:
    """Stable per (collection, content): a retried ingestion rewrites the same ids, it adds none."""
    return str(uuid.uuid5(_DOCUMENT_NAMESPACE, f"{collection}\x00{sha256}"))


def _check_texts(name: str, name_param: str, collection: str, metadata: Mapping[str, Any] | None) -> None:
    check_text(name, name_param)
    check_collection(collection)
    check_text(collection, "collection")
    check_json_text(metadata or {}, "metadata")


def _shown(document: Document) -> Document:
    """``document`` as its tenant sees it: its collection by the name the tenant gave."""
    return replace(document, collection=visible_collection(document.collection))


class IngestionService:
    """Turns uploads into searchable chunks and a registry record."""

    def __init__(
        self,
        *,
        parser: DocumentParser,
        embedder: Embedder,
        store: VectorStore,
        registry: DocumentRegistry,
        policy: ChunkingPolicy | None = None,
        limits: IngestionLimits | None = None,
        sparse: SparseEncoder | None = None,
    ) -> None:
        self._sparse = sparse
        self._parser = parser
        self._embedder = embedder
        self._store = store
        self._registry = registry
        self._policy = policy or ChunkingPolicy()
        self._limits = limits or IngestionLimits()

    @property
    def policy(self) -> ChunkingPolicy:
        """The default chunking policy (a request may bring its own)."""
        return self._policy

    async def ingest(
        self,
        data: bytes,
        *,
        filename: str,
        collection: str = "default",
        metadata: Mapping[str, Any] | None = None,
        policy: ChunkingPolicy | None = None,
        chunk: bool = True,
        tenant: str = DEFAULT_TENANT,
    ) -> IngestResult:
        """Ingest one file into ``tenant``'s ``collection``; a second upload of the same bytes into the same
        collection writes nothing. ``chunk=False`` indexes it as one chunk (refused if the embedder would
        cut it off)."""
        if len(data) > self._limits.max_bytes:
            raise PayloadTooLarge(f"{filename!r} is {len(data)} bytes; the limit is {self._limits.max_bytes}")
        _check_texts(filename, "filename", collection, metadata)
        stored = stored_collection(tenant, collection)
        sha256 = hashlib.sha256(data).hexdigest()
        existing = await self._registry.find_by_hash(stored, sha256)
        if existing is not None:
            return IngestResult(document=_shown(existing), duplicate=True)
        parsed = await asyncio.to_thread(self._parser.parse, data, filename)
        return await self._store_parsed(
            parsed, sha256=sha256, size=len(data), name=filename, collection=stored,
            metadata=metadata or {}, policy=policy or self._policy, chunk=chunk,
        )  # fmt: skip

    async def ingest_text(
        self,
        content: str,
        *,
        name: str,
        collection: str = "default",
        metadata: Mapping[str, Any] | None = None,
        policy: ChunkingPolicy | None = None,
        chunk: bool = True,
        tenant: str = DEFAULT_TENANT,
    ) -> IngestResult:
        """Ingest text given directly (no parsing); ``chunk=False`` as for ``ingest``."""
        check_text(content, "content")
        _check_texts(name, "name", collection, metadata)
        stored = stored_collection(tenant, collection)
        data = content.encode("utf-8")
        if len(data) > self._limits.max_bytes:
            raise PayloadTooLarge(f"the content is {len(data)} bytes; the limit is {self._limits.max_bytes}")
        sha256 = hashlib.sha256(data).hexdigest()
        existing = await self._registry.find_by_hash(stored, sha256)
        if existing is not None:
            return IngestResult(document=_shown(existing), duplicate=True)
        parsed = ParsedDocument(media_type="text/plain", pages=((None, content),))
        return await self._store_parsed(
            parsed, sha256=sha256, size=len(data), name=name, collection=stored,
            metadata=metadata or {}, policy=policy or self._policy, chunk=chunk,
        )  # fmt: skip

    async def _store_parsed(
        self,
        parsed: ParsedDocument,
        *,
        sha256: str,
        size: int,
        name: str,
        collection: str,
        metadata: Mapping[str, Any],
        policy: ChunkingPolicy,
        chunk: bool,
    ) -> IngestResult:
        spans = split_pages(parsed.pages, policy) if chunk else whole_text(parsed.pages)
        if not spans:
            raise UnprocessableContent(f"{name!r} contains no text to index")
        if not chunk:
            fit = await self._embedder.measure(spans[0].text)
            if not fit.fits:
                raise PayloadTooLarge(
                    f"{name!r} is {fit.tokens} tokens as one chunk; {self._embedder.model_id} reads at most "
                    f"{fit.limit} of a chunk and would ignore the rest: send it chunked (chunk: true)"
                )
        document_id = document_id_for(collection, sha256)
        texts = [span.text for span in spans]
        vectors = await self._embed(texts)
        sparse: Sequence[SparseVector | None] = (
            await self._sparse.encode_documents(texts) if self._sparse else [None] * len(texts)
        )
        chunks = [
            Chunk(
                id=f"{document_id}:{index}",
                document_id=document_id,
                collection=collection,
                index=index,
                text=span.text,
                source=name,
                page=span.page,
                metadata=metadata,
                vector=tuple(vector),
                sparse=terms,
            )
            for index, (span, vector, terms) in enumerate(zip(spans, vectors, sparse, strict=True))
        ]
        document = Document(
            id=document_id,
            collection=collection,
            name=name,
            sha256=sha256,
            media_type=parsed.media_type,
            size_bytes=size,
            chunk_count=len(chunks),
            embedding_model=self._embedder.model_id,
            created_at=datetime.now(UTC),
            title=parsed.title,
            metadata=dict(metadata),
        )
        try:
            for start in range(0, len(chunks), self._limits.batch_size):
                await self._store.upsert(collection, chunks[start : start + self._limits.batch_size])
            await self._registry.add(document)
        except BaseException:
            await asyncio.shield(self._store.delete_document(collection, document_id))
            raise
        return IngestResult(document=_shown(document))

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._limits.batch_size):
            vectors.extend(await self._embedder.embed(texts[start : start + self._limits.batch_size]))
        return vectors

    async def get(self, document_id: str, *, tenant: str = DEFAULT_TENANT) -> Document:
        """The document; ``NotFound`` when there is none, or it is another tenant's."""
        return _shown(await self._owned(document_id, tenant))

    async def _owned(self, document_id: str, tenant: str) -> Document:
        document = await self._registry.get(document_id)
        if document is None or not of_tenant(document.collection, tenant):
            raise NotFound(f"no document {document_id!r}", param="document_id")
        return document

    async def list(
        self,
        *,
        collection: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> Page[Document]:
        """``tenant``'s documents (of ``collection``), newest first; ``cursor``: the previous page's
        ``next_cursor``."""
        if limit < 1:
            raise InvalidRequest("limit must be at least 1", param="limit")
        offset = cursor_offset(cursor)
        stored = stored_collection(tenant, collection) if collection is not None else None
        found = await self._registry.list(collection=stored, limit=limit + 1, offset=offset, tenant=tenant)
        page = page_of(found, limit, lambda _: offset_cursor(offset + limit))
        return replace(page, items=tuple(_shown(document) for document in page.items))

    async def delete(self, document_id: str, *, tenant: str = DEFAULT_TENANT) -> Document:
        """Remove the document's chunks, then its record."""
        document = await self._owned(document_id, tenant)
        await self._store.delete_document(document.collection, document.id)
        await self._registry.delete(document.id)
        return _shown(document)
