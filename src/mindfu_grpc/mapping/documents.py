"""Documents, retrieved chunks and the server's defaults."""

from __future__ import annotations

from mindfu_core.domain.documents import Chunk, ChunkingPolicy, Document, ScoredChunk
from mindfu_core.domain.retrieval import RetrievalOptions
from mindfu_grpc._pb.mindfu.v1 import documents_pb2 as pb
from mindfu_grpc.mapping.common import from_timestamp, json_object, json_text, optional, timestamp
from mindfu_grpc.mapping.retrieval import filter_from_pb, retrieval_to_pb


def document_to_pb(document: Document) -> pb.Document:
    out = pb.Document(
        id=document.id,
        collection=document.collection,
        name=document.name,
        media_type=document.media_type,
        size_bytes=document.size_bytes,
        chunk_count=document.chunk_count,
        sha256=document.sha256,
        embedding_model=document.embedding_model,
        metadata_json=json_text(document.metadata),
        created_at=timestamp(document.created_at),
    )
    if document.title is not None:
        out.title = document.title
    return out


def document_from_pb(document: pb.Document) -> Document:
    return Document(
        id=document.id,
        collection=document.collection,
        name=document.name,
        title=optional(document, "title"),
        media_type=document.media_type,
        size_bytes=document.size_bytes,
        chunk_count=document.chunk_count,
        sha256=document.sha256,
        embedding_model=document.embedding_model,
        metadata=json_object(document.metadata_json, "metadata_json"),
        created_at=from_timestamp(document.created_at),
    )


def chunking_from_pb(chunking: pb.Chunking, default: ChunkingPolicy) -> ChunkingPolicy | None:
    """The request's chunking over the server's (``None`` when the request set nothing)."""
    size, overlap = optional(chunking, "size"), optional(chunking, "overlap")
    if size is None and overlap is None:
        return None
    return ChunkingPolicy(
        size=default.size if size is None else size, overlap=default.overlap if overlap is None else overlap
    )


def chunking_to_pb(policy: ChunkingPolicy | None, chunk: bool = True) -> pb.Chunking:
    if policy is None:
        return pb.Chunking(whole=not chunk)
    return pb.Chunking(size=policy.size, overlap=policy.overlap, whole=not chunk)


def hit_to_pb(hit: ScoredChunk) -> pb.RetrievedChunk:
    chunk = hit.chunk
    out = pb.RetrievedChunk(
        id=chunk.id,
        document_id=chunk.document_id,
        name=chunk.source,
        chunk_index=chunk.index,
        score=hit.score,
        text=chunk.text,
        metadata_json=json_text(chunk.metadata),
    )
    if chunk.page is not None:
        out.page = chunk.page
    return out


def hit_from_pb(hit: pb.RetrievedChunk, collection: str) -> ScoredChunk:
    return ScoredChunk(
        chunk=Chunk(
            id=hit.id,
            document_id=hit.document_id,
            collection=collection,
            index=hit.chunk_index,
            text=hit.text,
            source=hit.name,
            page=optional(hit, "page"),
            metadata=json_object(hit.metadata_json, "metadata_json"),
        ),
        score=hit.score,
    )


def defaults_to_pb(retrieval: RetrievalOptions, policy: ChunkingPolicy) -> pb.GetDefaultsResponse:
    return pb.GetDefaultsResponse(retrieval=retrieval_to_pb(retrieval), chunking=chunking_to_pb(policy))


def defaults_from_pb(response: pb.GetDefaultsResponse) -> tuple[RetrievalOptions, ChunkingPolicy]:
    options = response.retrieval
    retrieval = RetrievalOptions(
        enabled=options.enabled,
        top_k=options.top_k,
        min_score=optional(options, "min_score"),
        collection=options.collection,
        where=filter_from_pb(options.where) if options.HasField("where") else None,
        hybrid=options.hybrid,
    )
    return retrieval, ChunkingPolicy(size=response.chunking.size, overlap=response.chunking.overlap)
