"""The remote core's documents, retrieval, embeddings, conversations and training, over its gRPC channel
(parts of ``RemoteApplication``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from mindfu_core.domain.conversations import (
    Conversation,
    ConversationFilter,
    ConversationPage,
    Feedback,
)
from mindfu_core.domain.documents import ChunkingPolicy, Document, IngestResult, ScoredChunk
from mindfu_core.domain.embeddings import Embeddings
from mindfu_core.domain.examples import finetuning_example
from mindfu_core.domain.pages import Page
from mindfu_core.domain.principals import DEFAULT_TENANT
from mindfu_core.domain.retrieval import NO_OVERRIDES, RetrievalOptions, RetrievalOverrides
from mindfu_core.domain.text import check_json_text, check_text
from mindfu_core.domain.training import Checkpoint, JobEvent, JobSpec, TrainingFile, TrainingJob
from mindfu_grpc._pb.mindfu.v1 import (
    conversations_pb2,
    documents_pb2,
    embeddings_pb2,
    training_pb2,
)
from mindfu_grpc._pb.mindfu.v1.conversations_pb2_grpc import ConversationServiceStub
from mindfu_grpc._pb.mindfu.v1.documents_pb2_grpc import DocumentServiceStub
from mindfu_grpc._pb.mindfu.v1.embeddings_pb2_grpc import EmbeddingServiceStub
from mindfu_grpc._pb.mindfu.v1.training_pb2_grpc import TrainingServiceStub
from mindfu_grpc.channel import Channel, stream_pieces
from mindfu_grpc.mapping import conversations as conversation_mapping
from mindfu_grpc.mapping import documents as document_mapping
from mindfu_grpc.mapping import retrieval as retrieval_mapping
from mindfu_grpc.mapping import training as training_mapping
from mindfu_grpc.mapping.common import json_text


def _check_upload_text(name: str, param: str, collection: str, metadata: Mapping[str, Any] | None) -> None:
    """What protobuf cannot encode is the client's error, named as the core would name it."""
    check_text(name, param)
    check_text(collection, "collection")
    check_json_text(metadata or {}, "metadata")


#: Bytes per message of an upload stream.
UPLOAD_PIECE = 1024 * 1024


class Defaults:
    """The core's retrieval options and chunking, read once at start-up."""

    def __init__(self, retrieval: RetrievalOptions, policy: ChunkingPolicy) -> None:
        self.retrieval = retrieval
        self.policy = policy


class RemoteDocuments:
    """``DocumentApi`` over ``mindfu.v1.DocumentService``; uploads stream in 1 MiB pieces."""

    def __init__(self, channel: Channel, defaults: Defaults) -> None:
        self._channel = channel
        self._stub = DocumentServiceStub(channel.channel)
        self._defaults = defaults

    @property
    def policy(self) -> ChunkingPolicy:
        return self._defaults.policy

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
        _check_upload_text(filename, "filename", collection, metadata)
        info = documents_pb2.UploadInfo(
            name=filename,
            collection=collection,
            metadata_json=json_text(metadata),
            chunking=document_mapping.chunking_to_pb(policy, chunk),
        )

        async def messages() -> AsyncIterator[documents_pb2.UploadDocumentRequest]:
            yield documents_pb2.UploadDocumentRequest(info=info)
            for start in range(0, len(data), UPLOAD_PIECE):
                yield documents_pb2.UploadDocumentRequest(data=data[start : start + UPLOAD_PIECE])

        found = await self._channel.call(self._stub.UploadDocument, messages())
        return IngestResult(
            document=document_mapping.document_from_pb(found.document), duplicate=found.duplicate
        )

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
        check_text(content, "content")
        _check_upload_text(name, "name", collection, metadata)
        request = documents_pb2.AddTextRequest(
            content=content,
            name=name,
            collection=collection,
            metadata_json=json_text(metadata),
            chunking=document_mapping.chunking_to_pb(policy, chunk),
        )
        found = await self._channel.call(self._stub.AddText, request)
        return IngestResult(
            document=document_mapping.document_from_pb(found.document), duplicate=found.duplicate
        )

    async def get(self, document_id: str, *, tenant: str = DEFAULT_TENANT) -> Document:
        found = await self._channel.call(
            self._stub.GetDocument, documents_pb2.GetDocumentRequest(id=document_id)
        )
        return document_mapping.document_from_pb(found.document)

    async def list(
        self,
        *,
        collection: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> Page[Document]:
        request = documents_pb2.ListDocumentsRequest(limit=limit, after=cursor or "")
        if collection is not None:
            request.collection = collection
        found = await self._channel.call(self._stub.ListDocuments, request)
        documents = tuple(document_mapping.document_from_pb(d) for d in found.documents)
        return Page(items=documents, next_cursor=found.next_cursor or None)

    async def delete(self, document_id: str, *, tenant: str = DEFAULT_TENANT) -> Document:
        request = documents_pb2.DeleteDocumentRequest(id=document_id)
        found = await self._channel.call(self._stub.DeleteDocument, request)
        return document_mapping.document_from_pb(found.document)


class RemoteRetrieval:
    """``RetrievalApi`` over ``mindfu.v1.DocumentService.Retrieve``."""

    def __init__(self, channel: Channel, defaults: Defaults) -> None:
        self._channel = channel
        self._stub = DocumentServiceStub(channel.channel)
        self._defaults = defaults

    @property
    def defaults(self) -> RetrievalOptions:
        return self._defaults.retrieval

    def options(self, overrides: RetrievalOverrides = NO_OVERRIDES) -> RetrievalOptions:
        """The core's defaults with ``overrides`` applied (the core validates them when they arrive)."""
        return overrides.apply(self.defaults)

    async def search(
        self, query: str, options: RetrievalOptions, *, tenant: str = DEFAULT_TENANT
    ) -> list[ScoredChunk]:
        request = documents_pb2.RetrieveRequest(
            query=query, options=retrieval_mapping.retrieval_to_pb(options)
        )
        found = await self._channel.call(self._stub.Retrieve, request)
        return [document_mapping.hit_from_pb(h, found.collection) for h in found.chunks]


class RemoteEmbeddings:
    """``EmbeddingApi`` over ``mindfu.v1.EmbeddingService``."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._stub = EmbeddingServiceStub(channel.channel)

    async def embed(self, model: str, texts: Sequence[str], *, dimensions: int | None = None) -> Embeddings:
        for position, text in enumerate(texts):
            check_text(text, f"input[{position}]")
        request = embeddings_pb2.EmbedRequest(model=model, inputs=list(texts))
        if dimensions is not None:
            request.dimensions = dimensions
        found = await self._channel.call(self._stub.Embed, request)
        return Embeddings(
            model=found.model,
            vectors=tuple(tuple(e.values) for e in found.embeddings),
            prompt_tokens=found.prompt_tokens,
        )


class RemoteConversations:
    """``ConversationApi`` over ``mindfu.v1.ConversationService``; the export streams."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._stub = ConversationServiceStub(channel.channel)

    async def list(
        self, where: ConversationFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        request = conversations_pb2.ListConversationsRequest(
            filter=conversation_mapping.filter_to_pb(where), limit=limit, cursor=cursor or ""
        )
        found = await self._channel.call(self._stub.ListConversations, request)
        return ConversationPage(
            items=tuple(conversation_mapping.summary_from_pb(s) for s in found.conversations),
            next_cursor=found.next_cursor or None,
        )

    async def get(self, conversation_id: str, *, tenant: str | None = None) -> Conversation:
        request = conversations_pb2.GetConversationRequest(id=conversation_id)
        found = await self._channel.call(self._stub.GetConversation, request)
        return conversation_mapping.conversation_from_pb(found.conversation)

    async def of_completion(self, completion_id: str, *, tenant: str | None = None) -> Conversation:
        request = conversations_pb2.GetConversationRequest(completion_id=completion_id)
        found = await self._channel.call(self._stub.GetConversation, request)
        return conversation_mapping.conversation_from_pb(found.conversation)

    async def delete(self, conversation_id: str, *, tenant: str | None = None) -> None:
        request = conversations_pb2.DeleteConversationRequest(id=conversation_id)
        await self._channel.call(self._stub.DeleteConversation, request)

    async def add_feedback(
        self,
        conversation_id: str,
        *,
        rating: int,
        comment: str | None = None,
        completion_id: str | None = None,
        tenant: str | None = None,
    ) -> Feedback:
        request = conversations_pb2.AddFeedbackRequest(conversation_id=conversation_id, rating=rating)
        if comment is not None:
            request.comment = comment
        if completion_id is not None:
            request.completion_id = completion_id
        found = await self._channel.call(self._stub.AddFeedback, request)
        return conversation_mapping.feedback_from_pb(found.feedback)

    async def export(self, where: ConversationFilter | None = None) -> AsyncIterator[Conversation]:
        request = conversations_pb2.ExportConversationsRequest(
            filter=conversation_mapping.filter_to_pb(where)
        )
        # an export may run long: no deadline beyond the client's own
        call = self._stub.ExportConversations(request, metadata=self._channel.metadata())
        async for piece in stream_pieces(call, self._channel):
            yield conversation_mapping.conversation_from_pb(piece.conversation)

    async def export_examples(self, where: ConversationFilter | None = None) -> AsyncIterator[dict[str, Any]]:
        async for conversation in self.export(where):
            if any(m.role.value == "assistant" for m in conversation.messages):
                yield finetuning_example(conversation)


class RemoteTraining:
    """``TrainingApi`` over ``mindfu.v1.TrainingService``: files and jobs live in the core."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._stub = TrainingServiceStub(channel.channel)

    async def upload_file(
        self, data: bytes, *, filename: str, purpose: str = "fine-tune", tenant: str | None = None
    ) -> TrainingFile:
        info = training_pb2.UploadFileInfo(filename=filename, purpose=purpose)

        async def messages() -> AsyncIterator[training_pb2.UploadFileRequest]:
            yield training_pb2.UploadFileRequest(info=info)
            for start in range(0, len(data), UPLOAD_PIECE):
                yield training_pb2.UploadFileRequest(chunk=data[start : start + UPLOAD_PIECE])

        found = await self._channel.call(self._stub.UploadFile, messages())
        return training_mapping.file_from_pb(found.file)

    async def get_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        found = await self._channel.call(self._stub.GetFile, training_pb2.GetFileRequest(id=file_id))
        return training_mapping.file_from_pb(found.file)

    async def list_files(
        self, *, limit: int = 100, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingFile]:
        request = training_pb2.ListFilesRequest(limit=limit, after=cursor or "")
        found = await self._channel.call(self._stub.ListFiles, request)
        files = tuple(training_mapping.file_from_pb(f) for f in found.files)
        return Page(items=files, next_cursor=found.next_cursor or None)

    async def delete_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        found = await self._channel.call(self._stub.DeleteFile, training_pb2.DeleteFileRequest(id=file_id))
        return training_mapping.file_from_pb(found.file)

    async def create_job(self, spec: JobSpec, *, tenant: str | None = None) -> TrainingJob:
        found = await self._channel.call(self._stub.CreateJob, training_mapping.spec_to_pb(spec))
        return training_mapping.job_from_pb(found.job)

    async def get_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        found = await self._channel.call(self._stub.GetJob, training_pb2.GetJobRequest(id=job_id))
        return training_mapping.job_from_pb(found.job)

    async def list_jobs(
        self, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingJob]:
        request = training_pb2.ListJobsRequest(limit=limit, after=cursor or "")
        found = await self._channel.call(self._stub.ListJobs, request)
        jobs = tuple(training_mapping.job_from_pb(j) for j in found.jobs)
        return Page(items=jobs, next_cursor=found.next_cursor or None)

    async def events(
        self, job_id: str, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[JobEvent]:
        request = training_pb2.ListJobEventsRequest(id=job_id, limit=limit, after=cursor or "")
        found = await self._channel.call(self._stub.ListJobEvents, request)
        events = tuple(training_mapping.event_from_pb(e, job_id) for e in found.events)
        return Page(items=events, next_cursor=found.next_cursor or None)

    async def checkpoints(self, job_id: str, *, tenant: str | None = None) -> list[Checkpoint]:
        request = training_pb2.ListCheckpointsRequest(id=job_id)
        found = await self._channel.call(self._stub.ListCheckpoints, request)
        return [training_mapping.checkpoint_from_pb(c) for c in found.checkpoints]

    async def cancel_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        found = await self._channel.call(self._stub.CancelJob, training_pb2.CancelJobRequest(id=job_id))
        return training_mapping.job_from_pb(found.job)
