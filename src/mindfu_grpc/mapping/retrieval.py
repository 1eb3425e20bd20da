"""gRPC <-> domain: retrieval options and overrides, metadata filters, and the sources an answer cites."""

from __future__ import annotations

from mindfu_core.domain.documents import Filter
from mindfu_core.domain.retrieval import UNSET, RetrievalOptions, RetrievalOverrides, Source
from mindfu_core.errors import InvalidRequest
from mindfu_grpc._pb.mindfu.v1 import retrieval_pb2
from mindfu_grpc.mapping.common import optional


def retrieval_overrides(options: retrieval_pb2.RetrievalOptions) -> RetrievalOverrides:
    """The fields a request set (the server's defaults fill the rest)."""
    return RetrievalOverrides(
        enabled=options.enabled if options.HasField("enabled") else UNSET,
        top_k=options.top_k if options.HasField("top_k") else UNSET,
        min_score=options.min_score if options.HasField("min_score") else UNSET,
        collection=options.collection if options.HasField("collection") else UNSET,
        where=filter_from_pb(options.where) if options.HasField("where") else UNSET,
        hybrid=options.hybrid if options.HasField("hybrid") else UNSET,
    )


def retrieval_to_pb(options: RetrievalOptions) -> retrieval_pb2.RetrievalOptions:
    out = retrieval_pb2.RetrievalOptions(
        enabled=options.enabled, top_k=options.top_k, collection=options.collection, hybrid=options.hybrid
    )
    if options.min_score is not None:
        out.min_score = options.min_score
    if options.where is not None:
        out.where.CopyFrom(filter_to_pb(options.where))
    return out


def filter_from_pb(where: retrieval_pb2.MetadataFilter) -> Filter:
    metadata: dict[str, str | int | bool] = {}
    for key, value in where.metadata.items():
        kind = value.WhichOneof("kind")
        if kind is None:
            raise InvalidRequest(f"filter value {key!r} has no value", param=f"where.metadata.{key}")
        metadata[key] = getattr(value, kind)
    return Filter(document_ids=tuple(where.document_ids), metadata=metadata)


def filter_to_pb(where: Filter) -> retrieval_pb2.MetadataFilter:
    out = retrieval_pb2.MetadataFilter(document_ids=list(where.document_ids))
    for key, value in where.metadata.items():
        if isinstance(value, bool):
            out.metadata[key].bool_value = value
        elif isinstance(value, int):
            out.metadata[key].int_value = value
        else:
            out.metadata[key].string_value = str(value)
    return out


def source_to_pb(source: Source) -> retrieval_pb2.Source:
    out = retrieval_pb2.Source(
        number=source.number,
        document_id=source.document_id,
        name=source.name,
        chunk_index=source.chunk_index,
        score=source.score,
        excerpt=source.excerpt,
    )
    if source.page is not None:
        out.page = source.page
    return out


def source_from_pb(source: retrieval_pb2.Source) -> Source:
    return Source(
        number=source.number,
        document_id=source.document_id,
        name=source.name,
        page=optional(source, "page"),
        chunk_index=source.chunk_index,
        score=source.score,
        excerpt=source.excerpt,
    )
