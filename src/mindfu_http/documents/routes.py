"""Documents: upload (multipart) or post text, list, show, delete; and what a query would retrieve.

Uploaded names are metadata only: the bytes go straight to the parser and nothing is written under the
client's filename.
"""

from __future__ import annotations

import json
from pathlib import PureWindowsPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from mindfu_core.domain.documents import ChunkingPolicy, Document, IngestResult, ScoredChunk
from mindfu_core.domain.pages import offset_cursor
from mindfu_core.domain.principals import Scope
from mindfu_core.domain.retrieval import RetrievalOptions
from mindfu_core.errors import InvalidRequest
from mindfu_http.auth import authorized, tenant_of
from mindfu_http.deps import ingestion_service, retriever
from mindfu_http.openai.schemas import RagIn
from mindfu_http.responses import (
    ChunkHit,
    ChunkList,
    DocumentDefaults,
    DocumentDeleted,
    DocumentIngested,
    DocumentList,
    DocumentObject,
    RagObject,
)

router = APIRouter(prefix="/v1", tags=["documents"])

#: Paths whose bodies may be as large as a document (the HTTP body limit is raised for them).
UPLOAD_PATHS = ("/v1/documents/upload", "/v1/documents")
MAX_NAME_CHARS = 255
MAX_PAGE = 1000


class ChunkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int | None = None
    overlap: int | None = None


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(min_length=1)
    name: str | None = None
    collection: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunk: StrictBool | ChunkIn | None = Field(
        default=None,
        description="true (or absent): chunked by the server's policy; false: indexed as one chunk (413 "
        "when longer than the embedder reads of one text); an object: chunked with this size and overlap.",
    )

    def chunking(self, default: ChunkingPolicy) -> tuple[ChunkingPolicy | None, bool]:
        """The chunking policy (``None``: the server's) and whether to chunk at all."""
        if isinstance(self.chunk, ChunkIn):
            return _policy(self.chunk.size, self.chunk.overlap, default), True
        return None, self.chunk is not False


class RetrieveIn(RagIn):
    """A query and the same retrieval options a chat request's ``"mindfu": {"rag": {...}}`` takes."""

    query: str = Field(min_length=1)


def document_object(document: Document) -> DocumentObject:
    return {
        "id": document.id,
        "object": "document",
        "collection": document.collection,
        "name": document.name,
        "title": document.title,
        "media_type": document.media_type,
        "size_bytes": document.size_bytes,
        "chunk_count": document.chunk_count,
        "sha256": document.sha256,
        "embedding_model": document.embedding_model,
        "metadata": dict(document.metadata),
        "created_at": int(document.created_at.timestamp()),
    }


def _ingested(result: IngestResult) -> JSONResponse:
    body = {**document_object(result.document), "duplicate": result.duplicate}
    return JSONResponse(body, status_code=200 if result.duplicate else 201)


def safe_name(filename: str | None) -> str:
    """The client's filename reduced to a display name: no directories, no control characters."""
    base = PureWindowsPath(filename or "").name  # splits on both / and \
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:MAX_NAME_CHARS] or "upload"


def _policy(size: int | None, overlap: int | None, default: ChunkingPolicy) -> ChunkingPolicy | None:
    if size is None and overlap is None:
        return None
    return ChunkingPolicy(
        size=default.size if size is None else size, overlap=default.overlap if overlap is None else overlap
    )


def _metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"metadata is not valid JSON: {exc}", param="metadata") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be a JSON object", param="metadata")
    return value


@router.post(
    "/documents/upload",
    dependencies=[authorized(Scope.DOCUMENTS_WRITE)],
    summary="Upload a file (PDF, DOCX, Markdown, text, code) to index",
    status_code=201,
    response_model=DocumentIngested,
    responses={200: {"model": DocumentIngested, "description": "A duplicate of a stored document"}},
)
async def upload_document(
    request: Request,
    file: Annotated[UploadFile, File(description="The document")],
    collection: Annotated[str | None, Form()] = None,
    metadata: Annotated[str | None, Form(description="A JSON object stored with the document")] = None,
    chunk_size: Annotated[int | None, Form()] = None,
    chunk_overlap: Annotated[int | None, Form()] = None,
    chunk: Annotated[bool, Form(description="false: index the document as one chunk")] = True,
) -> JSONResponse:
    service = ingestion_service(request)
    try:
        data = await file.read()
    finally:
        await file.close()
    result = await service.ingest(
        data,
        filename=safe_name(file.filename),
        collection=collection or retriever(request).defaults.collection,
        metadata=_metadata(metadata),
        policy=_policy(chunk_size, chunk_overlap, service.policy),
        chunk=chunk,
        tenant=await tenant_of(request),
    )
    return _ingested(result)


@router.post(
    "/documents",
    dependencies=[authorized(Scope.DOCUMENTS_WRITE)],
    summary="Index text given in the request",
    status_code=201,
    response_model=DocumentIngested,
    responses={200: {"model": DocumentIngested, "description": "A duplicate of a stored document"}},
)
async def create_document(body: DocumentIn, request: Request) -> JSONResponse:
    service = ingestion_service(request)
    policy, chunk = body.chunking(service.policy)
    result = await service.ingest_text(
        body.content,
        name=safe_name(body.name) if body.name else "text",
        collection=body.collection or retriever(request).defaults.collection,
        metadata=body.metadata,
        policy=policy,
        chunk=chunk,
        tenant=await tenant_of(request),
    )
    return _ingested(result)


@router.get(
    "/documents", dependencies=[authorized(Scope.DOCUMENTS_READ)], summary="List documents, newest first"
)
async def list_documents(
    request: Request,
    collection: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    after: Annotated[str | None, Query(description="the `next_cursor` of the previous page")] = None,
) -> DocumentList:
    cursor = after or (offset_cursor(offset) if offset else None)
    page = await ingestion_service(request).list(
        collection=collection, limit=limit, cursor=cursor, tenant=await tenant_of(request)
    )
    return {
        "object": "list",
        "data": [document_object(d) for d in page.items],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
        "limit": limit,
        "offset": offset,
    }


@router.get(
    "/documents/defaults",
    dependencies=[authorized(None)],
    summary="The server's chunking policy and retrieval options",
)
async def document_defaults(request: Request) -> DocumentDefaults:
    """What an upload without ``chunk`` and a chat request without ``mindfu.rag`` get."""
    policy = ingestion_service(request).policy
    return {
        "object": "documents.defaults",
        "chunking": {"size": policy.size, "overlap": policy.overlap},
        "rag": rag_object(retriever(request).defaults),
    }


def rag_object(options: RetrievalOptions) -> RagObject:
    """Retrieval options in the shape of the ``mindfu.rag`` request extension."""
    where = options.where
    return {
        "enabled": options.enabled,
        "top_k": options.top_k,
        "min_score": options.min_score,
        "collection": options.collection,
        "hybrid": options.hybrid,
        "filter": (
            {"document_ids": list(where.document_ids), "metadata": dict(where.metadata)}
            if where is not None
            else None
        ),
    }


@router.get(
    "/documents/{document_id}", dependencies=[authorized(Scope.DOCUMENTS_READ)], summary="One document"
)
async def get_document(document_id: str, request: Request) -> DocumentObject:
    return document_object(await ingestion_service(request).get(document_id, tenant=await tenant_of(request)))


@router.delete(
    "/documents/{document_id}",
    dependencies=[authorized(Scope.DOCUMENTS_WRITE)],
    summary="Delete a document and its chunks",
)
async def delete_document(document_id: str, request: Request) -> DocumentDeleted:
    document = await ingestion_service(request).delete(document_id, tenant=await tenant_of(request))
    return {
        "id": document.id,
        "object": "document.deleted",
        "deleted": True,
        "document": document_object(document),
    }


def _hit(hit: ScoredChunk) -> ChunkHit:
    chunk = hit.chunk
    return {
        "object": "chunk",
        "id": chunk.id,
        "document_id": chunk.document_id,
        "name": chunk.source,
        "page": chunk.page,
        "chunk_index": chunk.index,
        "score": round(hit.score, 6),
        "text": chunk.text,
        "metadata": dict(chunk.metadata),
    }


@router.post(
    "/retrieve",
    dependencies=[authorized(Scope.DOCUMENTS_READ)],
    summary="The chunks a chat query would be given (for debugging retrieval)",
)
async def retrieve(body: RetrieveIn, request: Request) -> ChunkList:
    found = retriever(request)
    options = found.options(body.overrides())
    hits = await found.search(body.query, options, tenant=await tenant_of(request))
    return {"object": "list", "collection": options.collection, "data": [_hit(h) for h in hits]}
