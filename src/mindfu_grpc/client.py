"""The application over gRPC: a client of a remote core that implements ``mindfu_core.application``, so
the HTTP facade runs as a stateless gateway (``mindfu serve --role gateway --core HOST:PORT``).

Each call presents the credentials of the request being served (or the gateway's own key), carries a
deadline, and turns the core's status back into the domain error it stands for; a core that is down is
``UpstreamUnavailable`` (503 with Retry-After at the gateway) until the channel reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from google.protobuf import json_format

import grpc
from mindfu_core.application import Health
from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    ChatStream,
    GenerationRequest,
    ModelInfo,
)
from mindfu_core.domain.conversations import (
    CallContext,
    Conversation,
    ConversationFilter,
    ConversationPage,
    Feedback,
)
from mindfu_core.domain.documents import ChunkingPolicy, Document, IngestResult, ScoredChunk
from mindfu_core.domain.embeddings import Embeddings
from mindfu_core.domain.retrieval import NO_OVERRIDES, RetrievalOptions, RetrievalOverrides
from mindfu_core.domain.training import Checkpoint, JobEvent, JobSpec, TrainingFile, TrainingJob
from mindfu_core.errors import ConfigurationError, UpstreamUnavailable
from mindfu_core.services.auth import presented_credentials
from mindfu_core.services.chat import NO_CONTEXT
from mindfu_core.services.conversations import finetuning_example
from mindfu_grpc._pb.mindfu.v1 import (
    chat_pb2,
    conversations_pb2,
    documents_pb2,
    embeddings_pb2,
    models_pb2,
    training_pb2,
)
from mindfu_grpc._pb.mindfu.v1.chat_pb2_grpc import ChatServiceStub
from mindfu_grpc._pb.mindfu.v1.conversations_pb2_grpc import ConversationServiceStub
from mindfu_grpc._pb.mindfu.v1.documents_pb2_grpc import DocumentServiceStub
from mindfu_grpc._pb.mindfu.v1.embeddings_pb2_grpc import EmbeddingServiceStub
from mindfu_grpc._pb.mindfu.v1.models_pb2_grpc import ModelServiceStub
from mindfu_grpc._pb.mindfu.v1.training_pb2_grpc import TrainingServiceStub
from mindfu_grpc.errors import error_from_rpc
from mindfu_grpc.mapping import chat as chat_mapping
from mindfu_grpc.mapping import conversations as conversation_mapping
from mindfu_grpc.mapping import documents as document_mapping
from mindfu_grpc.mapping import training as training_mapping
from mindfu_grpc.mapping.common import json_text
from mindfu_grpc.servicers.documents import MAX_PAGE

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Bytes per message of an upload stream.
UPLOAD_PIECE = 1024 * 1024


class Channel:
    """One channel to the core, shared by every stub; per-call credentials, deadline and error mapping."""

    def __init__(self, target: str, *, api_key: str | None, timeout: float, max_message_bytes: int) -> None:
        self.target = target
        self._api_key = api_key
        self.timeout = timeout
        self.channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.keepalive_time_ms", 30_000),
                # a core that went away is tried again within a second or two once it is back
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2_000),
            ],
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        authorization = presented_credentials.get()
        if authorization is None and self._api_key:
            authorization = f"Bearer {self._api_key}"
        return (("authorization", authorization),) if authorization else ()

    async def call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, metadata=self.metadata(), timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error, target=self.target) from None

    def failure(self, error: grpc.aio.AioRpcError) -> Exception:
        return error_from_rpc(error, target=self.target)

    async def close(self) -> None:
        await self.channel.close()


async def _pieces(call: Any, channel: Channel) -> AsyncGenerator[Any, None]:
    """The messages of a server stream; cancels the call when the reader stops early (client gone)."""
    try:
        while True:
            try:
                message = await call.read()
            except grpc.aio.AioRpcError as error:
                raise channel.failure(error) from None
            if message is grpc.aio.EOF:
                return
            yield message
    finally:
        if not call.done():
            call.cancel()


class RemoteChat:
    """``ChatApi`` over ``mindfu.v1.ChatService`` and ``ModelService``."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._chat = ChatServiceStub(channel.channel)
        self._models = ModelServiceStub(channel.channel)

    async def list_models(self) -> list[ModelInfo]:
        found = await self._channel.call(self._models.ListModels, models_pb2.ListModelsRequest())
        return [chat_mapping.model_from_pb(m) for m in found.models]

    async def get_model(self, model_id: str) -> ModelInfo:
        found = await self._channel.call(self._models.GetModel, models_pb2.GetModelRequest(id=model_id))
        return chat_mapping.model_from_pb(found.model)

    async def count_tokens(self, request: ChatRequest) -> int:
        message = _chat_message(chat_pb2.CountTokensRequest, request, NO_CONTEXT)
        counted = await self._channel.call(self._chat.CountTokens, message)
        return int(counted.input_tokens)

    async def complete(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatResult:
        if isinstance(request, ChatRequest):
            response = await self._channel.call(
                self._chat.Complete, _chat_message(chat_pb2.CompleteRequest, request, context)
            )
            return chat_mapping.result_from_pb(response)
        text = chat_pb2.CompleteTextRequest(
            model=request.model, prompt=request.prompt, options=chat_mapping.text_options_to_pb(request)
        )
        return chat_mapping.text_result_from_pb(await self._channel.call(self._chat.CompleteText, text))

    async def stream(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatStream:
        """Starts the call and reads its first message (errors before generation surface here)."""
        channel = self._channel
        call: Any
        if isinstance(request, ChatRequest):
            message: Any = _chat_message(chat_pb2.StreamCompleteRequest, request, context)
            call = self._chat.StreamComplete(message, metadata=channel.metadata(), timeout=channel.timeout)
            to_delta: Callable[[Any], ChatDelta] = chat_mapping.delta_from_pb
        else:
            message = chat_pb2.StreamCompleteTextRequest(
                model=request.model, prompt=request.prompt, options=chat_mapping.text_options_to_pb(request)
            )
            call = self._chat.StreamCompleteText(
                message, metadata=channel.metadata(), timeout=channel.timeout
            )
            to_delta = chat_mapping.text_delta_from_pb
        pieces = _pieces(call, channel)
        try:
            first = await anext(pieces, None)
        except BaseException:
            await pieces.aclose()
            raise
        if first is None:
            return ChatStream(_empty(), id="", conversation_id=None)
        conversation = None
        if isinstance(first, chat_pb2.StreamCompleteResponse) and first.HasField("conversation_id"):
            conversation = first.conversation_id
        return ChatStream(_deltas(first, pieces, to_delta), id=first.id, conversation_id=conversation)


async def _empty() -> AsyncIterator[ChatDelta]:
    return
    yield  # pragma: no cover


async def _deltas(
    first: Any, rest: AsyncGenerator[Any, None], to_delta: Callable[[Any], ChatDelta]
) -> AsyncIterator[ChatDelta]:
    try:
        yield to_delta(first)
        async for piece in rest:
            yield to_delta(piece)
    finally:
        await rest.aclose()


def _chat_message(kind: Any, request: ChatRequest, context: CallContext) -> Any:
    return kind(
        model=request.model,
        messages=[chat_mapping.message_to_pb(m) for m in request.messages],
        options=chat_mapping.completion_options_to_pb(
            request,
            conversation_id=context.conversation_id,
            user=context.user,
            previous_completion_id=context.previous_completion_id,
            store=context.log,
        ),
    )


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
    ) -> IngestResult:
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
    ) -> IngestResult:
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

    async def get(self, document_id: str) -> Document:
        found = await self._channel.call(
            self._stub.GetDocument, documents_pb2.GetDocumentRequest(id=document_id)
        )
        return document_mapping.document_from_pb(found.document)

    async def list(
        self, *, collection: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Document]:
        documents: list[Document] = []
        while len(documents) < limit:  # pages of at most MAX_PAGE
            request = documents_pb2.ListDocumentsRequest(
                limit=min(limit - len(documents), MAX_PAGE), offset=offset + len(documents)
            )
            if collection is not None:
                request.collection = collection
            found = await self._channel.call(self._stub.ListDocuments, request)
            documents.extend(document_mapping.document_from_pb(d) for d in found.documents)
            if not found.has_more or not found.documents:
                break
        return documents

    async def delete(self, document_id: str) -> Document:
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

    async def search(self, query: str, options: RetrievalOptions) -> list[ScoredChunk]:
        request = documents_pb2.RetrieveRequest(query=query, options=chat_mapping.retrieval_to_pb(options))
        found = await self._channel.call(self._stub.Retrieve, request)
        return [document_mapping.hit_from_pb(h, found.collection) for h in found.chunks]


class RemoteEmbeddings:
    """``EmbeddingApi`` over ``mindfu.v1.EmbeddingService``."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._stub = EmbeddingServiceStub(channel.channel)

    async def embed(self, model: str, texts: Sequence[str], *, dimensions: int | None = None) -> Embeddings:
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

    async def get(self, conversation_id: str) -> Conversation:
        request = conversations_pb2.GetConversationRequest(id=conversation_id)
        found = await self._channel.call(self._stub.GetConversation, request)
        return conversation_mapping.conversation_from_pb(found.conversation)

    async def of_completion(self, completion_id: str) -> Conversation:
        request = conversations_pb2.GetConversationRequest(completion_id=completion_id)
        found = await self._channel.call(self._stub.GetConversation, request)
        return conversation_mapping.conversation_from_pb(found.conversation)

    async def delete(self, conversation_id: str) -> None:
        request = conversations_pb2.DeleteConversationRequest(id=conversation_id)
        await self._channel.call(self._stub.DeleteConversation, request)

    async def add_feedback(
        self,
        conversation_id: str,
        *,
        rating: int,
        comment: str | None = None,
        completion_id: str | None = None,
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
        async for piece in _pieces(call, self._channel):
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

    async def upload_file(self, data: bytes, *, filename: str, purpose: str = "fine-tune") -> TrainingFile:
        info = training_pb2.UploadFileInfo(filename=filename, purpose=purpose)

        async def messages() -> AsyncIterator[training_pb2.UploadFileRequest]:
            yield training_pb2.UploadFileRequest(info=info)
            for start in range(0, len(data), UPLOAD_PIECE):
                yield training_pb2.UploadFileRequest(chunk=data[start : start + UPLOAD_PIECE])

        found = await self._channel.call(self._stub.UploadFile, messages())
        return training_mapping.file_from_pb(found.file)

    async def get_file(self, file_id: str) -> TrainingFile:
        found = await self._channel.call(self._stub.GetFile, training_pb2.GetFileRequest(id=file_id))
        return training_mapping.file_from_pb(found.file)

    async def list_files(self, *, limit: int = 100) -> list[TrainingFile]:
        found = await self._channel.call(self._stub.ListFiles, training_pb2.ListFilesRequest(limit=limit))
        return [training_mapping.file_from_pb(f) for f in found.files]

    async def delete_file(self, file_id: str) -> TrainingFile:
        found = await self._channel.call(self._stub.DeleteFile, training_pb2.DeleteFileRequest(id=file_id))
        return training_mapping.file_from_pb(found.file)

    async def create_job(self, spec: JobSpec) -> TrainingJob:
        found = await self._channel.call(self._stub.CreateJob, training_mapping.spec_to_pb(spec))
        return training_mapping.job_from_pb(found.job)

    async def get_job(self, job_id: str) -> TrainingJob:
        found = await self._channel.call(self._stub.GetJob, training_pb2.GetJobRequest(id=job_id))
        return training_mapping.job_from_pb(found.job)

    async def list_jobs(self, *, limit: int = 20, after: str | None = None) -> list[TrainingJob]:
        request = training_pb2.ListJobsRequest(limit=limit, after=after or "")
        found = await self._channel.call(self._stub.ListJobs, request)
        return [training_mapping.job_from_pb(j) for j in found.jobs]

    async def events(self, job_id: str, *, limit: int = 20, after: str | None = None) -> list[JobEvent]:
        request = training_pb2.ListJobEventsRequest(id=job_id, limit=limit, after=after or "")
        found = await self._channel.call(self._stub.ListJobEvents, request)
        return [training_mapping.event_from_pb(e, job_id) for e in found.events]

    async def checkpoints(self, job_id: str) -> list[Checkpoint]:
        request = training_pb2.ListCheckpointsRequest(id=job_id)
        found = await self._channel.call(self._stub.ListCheckpoints, request)
        return [training_mapping.checkpoint_from_pb(c) for c in found.checkpoints]

    async def cancel_job(self, job_id: str) -> TrainingJob:
        found = await self._channel.call(self._stub.CancelJob, training_pb2.CancelJobRequest(id=job_id))
        return training_mapping.job_from_pb(found.job)


class RemoteApplication:
    """The application of a remote core (``mindfu_core.application.Application``)."""

    def __init__(self, channel: Channel, defaults: Defaults) -> None:
        self._channel = channel
        self.chat = RemoteChat(channel)
        self.documents = RemoteDocuments(channel, defaults)
        self.retrieval = RemoteRetrieval(channel, defaults)
        self.embeddings = RemoteEmbeddings(channel)
        self.conversations = RemoteConversations(channel)
        self.training = RemoteTraining(channel)
        self._models = ModelServiceStub(channel.channel)

    async def health(self) -> Health:
        """The core's readiness and detail, and where the core is; not ready while it cannot be reached."""
        core: dict[str, Any] = {"address": self._channel.target}
        try:
            found = await self._channel.call(self._models.GetStatus, models_pb2.GetStatusRequest())
        except UpstreamUnavailable as error:
            core["status"] = "unreachable"
            core["error"] = error.message
            return Health(ready=False, detail={"role": "gateway", "core": core})
        core["status"] = "ready" if found.ready else "not_ready"
        detail = {**_integral(json_format.MessageToDict(found.detail)), "role": "gateway", "core": core}
        return Health(ready=found.ready, detail=detail)


def _integral(value: Any) -> Any:
    """JSON from a ``Struct`` with whole numbers as ints again (a Struct holds every number as a double)."""
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RemoteCore:
    """Connects to a core at start-up (waiting up to ``connect_timeout`` for it) and closes at shutdown."""

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 30.0,
        max_message_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._target = target
        self._api_key = api_key
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_message_bytes = max_message_bytes
        self._channel: Channel | None = None

    async def start(self) -> RemoteApplication:
        channel = Channel(
            self._target,
            api_key=self._api_key,
            timeout=self._timeout,
            max_message_bytes=self._max_message_bytes,
        )
        self._channel = channel
        stub = DocumentServiceStub(channel.channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        while True:
            try:
                found = await stub.GetDefaults(
                    documents_pb2.GetDefaultsRequest(),
                    metadata=channel.metadata(),
                    timeout=max(0.1, deadline - loop.time()),
                    wait_for_ready=True,
                )
                break
            except grpc.aio.AioRpcError as error:
                failure = channel.failure(error)
                if not isinstance(failure, UpstreamUnavailable):
                    raise ConfigurationError(
                        f"the MindFu core at {self._target} refused the gateway: {failure} "
                        "(its key: MINDFU_CORE__API_KEY, or the first of MINDFU_API_KEYS)"
                    ) from None
                if loop.time() >= deadline:
                    raise UpstreamUnavailable(
                        f"the MindFu core at {self._target} did not answer within "
                        f"{self._connect_timeout:g} s (MINDFU_CORE__ADDRESS): {failure}"
                    ) from None
        retrieval, policy = document_mapping.defaults_from_pb(found)
        log.info("gateway connected to the core at %s", self._target)
        return RemoteApplication(channel, Defaults(retrieval, policy))

    async def stop(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
