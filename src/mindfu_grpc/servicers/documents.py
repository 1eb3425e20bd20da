"""mindfu.v1.DocumentService and mindfu.v1.EmbeddingService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from mindfu_core.application import Application
from mindfu_core.domain.pages import offset_cursor
from mindfu_core.errors import InvalidRequest, PayloadTooLarge
from mindfu_grpc._pb.mindfu.v1 import documents_pb2 as pb
from mindfu_grpc._pb.mindfu.v1 import documents_pb2_grpc, embeddings_pb2, embeddings_pb2_grpc
from mindfu_grpc.auth import caller
from mindfu_grpc.mapping import documents as mapping
from mindfu_grpc.mapping.common import json_object, optional
from mindfu_grpc.mapping.retrieval import retrieval_overrides

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 50
MAX_PAGE = 1000
MAX_NAME_CHARS = 255


def display_name(name: str, fallback: str) -> str:
    """A client's file name reduced to a display name: no directories, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:MAX_NAME_CHARS] or fallback


async def read_upload(messages: AsyncIterator[Any], *, data: str, limit: int) -> tuple[Any, bytes]:
    """A client-streamed upload (its ``info`` first, then pieces in the field ``data``) as the info and the
    bytes; ``PayloadTooLarge`` as soon as the bytes pass ``limit``."""
    info: Any = None
    parts: list[bytes] = []
    size = 0
    async for message in messages:
        part = message.WhichOneof("part")
        if info is None:
            if part != "info":
                raise InvalidRequest("the first message of an upload must be its info", param="info")
            info = message.info
        elif part == "info":
            raise InvalidRequest("only the first message of an upload may carry info", param="info")
        else:
            piece: bytes = getattr(message, data)
            size += len(piece)
            if size > limit:
                raise PayloadTooLarge(f"the upload is over the limit of {limit} bytes")
            parts.append(piece)
    if info is None:
        raise InvalidRequest("an upload needs its info first, then the bytes", param="info")
    return info, b"".join(parts)


class DocumentServicer(documents_pb2_grpc.DocumentServiceServicer):
    """Ingestion, the registry and retrieval; an upload over ``max_upload_bytes`` stops as soon as it is."""

    def __init__(self, application: Application, *, max_upload_bytes: int) -> None:
        self._app = application
        self._max_upload = max_upload_bytes

    async def UploadDocument(
        self, request_iterator: AsyncIterator[pb.UploadDocumentRequest], context: Context
    ) -> pb.UploadDocumentResponse:
        info, data = await read_upload(request_iterator, data="data", limit=self._max_upload)
        documents = self._app.documents
        result = await documents.ingest(
            data,
            filename=display_name(info.name, "upload"),
            collection=optional(info, "collection") or self._app.retrieval.defaults.collection,
            metadata=json_object(info.metadata_json, "info.metadata_json"),
            policy=mapping.chunking_from_pb(info.chunking, documents.policy),
            chunk=not info.chunking.whole,
            tenant=caller().tenant,
        )
        return pb.UploadDocumentResponse(
            document=mapping.document_to_pb(result.document), duplicate=result.duplicate
        )

    async def AddText(self, request: pb.AddTextRequest, context: Context) -> pb.AddTextResponse:
        if not request.content:
            raise InvalidRequest("content must not be empty", param="content")
        documents = self._app.documents
        result = await documents.ingest_text(
            request.content,
            name=display_name(request.name, "text") if request.HasField("name") else "text",
            collection=optional(request, "collection") or self._app.retrieval.defaults.collection,
            metadata=json_object(request.metadata_json, "metadata_json"),
            policy=mapping.chunking_from_pb(request.chunking, documents.policy),
            chunk=not request.chunking.whole,
            tenant=caller().tenant,
        )
        return pb.AddTextResponse(
            document=mapping.document_to_pb(result.document), duplicate=result.duplicate
        )

    async def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: Context
    ) -> pb.ListDocumentsResponse:
        limit = request.limit or DEFAULT_PAGE
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", param="limit")
        if request.offset < 0:
            raise InvalidRequest("offset must not be negative", param="offset")
        cursor = request.after or (offset_cursor(request.offset) if request.offset else None)
        page = await self._app.documents.list(
            collection=optional(request, "collection"), limit=limit, cursor=cursor, tenant=caller().tenant
        )
        return pb.ListDocumentsResponse(
            documents=[mapping.document_to_pb(d) for d in page.items],
            has_more=page.has_more,
            next_cursor=page.next_cursor or "",
        )

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Context) -> pb.GetDocumentResponse:
        return pb.GetDocumentResponse(
            document=mapping.document_to_pb(await self._app.documents.get(request.id, tenant=caller().tenant))
        )

    async def DeleteDocument(
        self, request: pb.DeleteDocumentRequest, context: Context
    ) -> pb.DeleteDocumentResponse:
        deleted = await self._app.documents.delete(request.id, tenant=caller().tenant)
        return pb.DeleteDocumentResponse(document=mapping.document_to_pb(deleted))

    async def Retrieve(self, request: pb.RetrieveRequest, context: Context) -> pb.RetrieveResponse:
        if not request.query:
            raise InvalidRequest("query must not be empty", param="query")
        retrieval = self._app.retrieval
        options = retrieval.options(retrieval_overrides(request.options))
        hits = await retrieval.search(request.query, options, tenant=caller().tenant)
        return pb.RetrieveResponse(collection=options.collection, chunks=[mapping.hit_to_pb(h) for h in hits])

    async def GetDefaults(self, request: pb.GetDefaultsRequest, context: Context) -> pb.GetDefaultsResponse:
        return mapping.defaults_to_pb(self._app.retrieval.defaults, self._app.documents.policy)


class EmbeddingServicer(embeddings_pb2_grpc.EmbeddingServiceServicer):
    """The embedding model."""

    def __init__(self, application: Application) -> None:
        self._app = application

    async def Embed(
        self, request: embeddings_pb2.EmbedRequest, context: Context
    ) -> embeddings_pb2.EmbedResponse:
        found = await self._app.embeddings.embed(
            request.model, list(request.inputs), dimensions=optional(request, "dimensions")
        )
        return embeddings_pb2.EmbedResponse(
            model=found.model,
            embeddings=[embeddings_pb2.Embedding(index=i, values=v) for i, v in enumerate(found.vectors)],
            prompt_tokens=found.prompt_tokens,
        )
