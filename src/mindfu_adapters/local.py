"""The application of this process for one-off commands (the CLI without ``--server``): each part starts
at its first call, so listing documents opens the vector store and the registry but never loads a model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from mindfu_adapters.container import Container
from mindfu_adapters.services import TRAINING_OFF, Services, resolve, start, stop
from mindfu_core.application import ChatApi, Health, TrainingApi, TrainingUnavailable
from mindfu_core.domain.chat import ChatRequest, ChatResult, ChatStream, GenerationRequest, ModelInfo
from mindfu_core.domain.conversations import (
    NO_CONTEXT,
    CallContext,
    Conversation,
    ConversationFilter,
    ConversationPage,
    Feedback,
)
from mindfu_core.domain.documents import ChunkingPolicy, Document, IngestResult, ScoredChunk
from mindfu_core.domain.embeddings import Embeddings
from mindfu_core.domain.pages import Page
from mindfu_core.domain.principals import DEFAULT_TENANT, ApiKey, NewApiKey, Principal
from mindfu_core.domain.retrieval import NO_OVERRIDES, RetrievalOptions, RetrievalOverrides
from mindfu_core.domain.training import Checkpoint, JobEvent, JobSpec, TrainingFile, TrainingJob
from mindfu_core.errors import NotFound
from mindfu_core.services.auth import KeyService
from mindfu_core.services.conversations import ConversationService
from mindfu_core.services.embeddings import EmbeddingService
from mindfu_core.services.ingestion import IngestionService
from mindfu_core.services.retrieval import Retriever

T = TypeVar("T")


class _Part(Generic[T]):
    """One part of the application, started by ``start`` at its first use (once, however many ask)."""

    def __init__(self, start: Callable[[], Awaitable[T]]) -> None:
        self._start = start
        self._value: T | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> T:
        async with self._lock:
            if self._value is None:
                self._value = await self._start()
            return self._value


class LocalChat:
    def __init__(self, part: _Part[ChatApi]) -> None:
        self._part = part

    async def list_models(self, *, tenant: str | None = None) -> list[ModelInfo]:
        return await (await self._part()).list_models(tenant=tenant)

    async def get_model(self, model_id: str, *, tenant: str | None = None) -> ModelInfo:
        return await (await self._part()).get_model(model_id, tenant=tenant)

    async def count_tokens(self, request: ChatRequest) -> int:
        return await (await self._part()).count_tokens(request)

    async def complete(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatResult:
        return await (await self._part()).complete(request, context)

    async def stream(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatStream:
        return await (await self._part()).stream(request, context)


class LocalDocuments:
    def __init__(self, part: _Part[IngestionService], policy: ChunkingPolicy) -> None:
        self._part = part
        self._policy = policy

    @property
    def policy(self) -> ChunkingPolicy:
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
        service = await self._part()
        return await service.ingest(
            data,
            filename=filename,
            collection=collection,
            metadata=metadata,
            policy=policy,
            chunk=chunk,
            tenant=tenant,
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
        service = await self._part()
        return await service.ingest_text(
            content,
            name=name,
            collection=collection,
            metadata=metadata,
            policy=policy,
            chunk=chunk,
            tenant=tenant,
        )

    async def get(self, document_id: str, *, tenant: str = DEFAULT_TENANT) -> Document:
        return await (await self._part()).get(document_id, tenant=tenant)

    async def list(
        self,
        *,
        collection: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> Page[Document]:
        return await (await self._part()).list(
            collection=collection, limit=limit, cursor=cursor, tenant=tenant
        )

    async def delete(self, document_id: str, *, tenant: str = DEFAULT_TENANT) -> Document:
        return await (await self._part()).delete(document_id, tenant=tenant)


class LocalRetrieval:
    def __init__(self, part: _Part[Retriever], defaults: RetrievalOptions) -> None:
        self._part = part
        self._defaults = defaults

    @property
    def defaults(self) -> RetrievalOptions:
        return self._defaults

    def options(self, overrides: RetrievalOverrides = NO_OVERRIDES) -> RetrievalOptions:
        return overrides.apply(self._defaults)

    async def search(
        self, query: str, options: RetrievalOptions, *, tenant: str = DEFAULT_TENANT
    ) -> list[ScoredChunk]:
        return await (await self._part()).search(query, options, tenant=tenant)


class LocalEmbeddings:
    def __init__(self, part: _Part[EmbeddingService]) -> None:
        self._part = part

    async def embed(self, model: str, texts: Sequence[str], *, dimensions: int | None = None) -> Embeddings:
        return await (await self._part()).embed(model, texts, dimensions=dimensions)


class LocalKeys:
    def __init__(self, part: _Part[KeyService]) -> None:
        self._part = part

    async def whoami(self, credentials: str | None) -> Principal:
        return await (await self._part()).whoami(credentials)

    async def create(
        self, caller: Principal, *, tenant: str, scopes: Iterable[str], name: str | None = None
    ) -> NewApiKey:
        return await (await self._part()).create(caller, tenant=tenant, scopes=scopes, name=name)

    async def list(self, caller: Principal, *, tenant: str | None = None) -> list[ApiKey]:
        return await (await self._part()).list(caller, tenant=tenant)

    async def revoke(self, caller: Principal, key_id: str) -> ApiKey:
        return await (await self._part()).revoke(caller, key_id)


class LocalConversations:
    def __init__(self, part: _Part[ConversationService]) -> None:
        self._part = part

    async def list(
        self, where: ConversationFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        return await (await self._part()).list(where, limit=limit, cursor=cursor)

    async def get(self, conversation_id: str, *, tenant: str | None = None) -> Conversation:
        return await (await self._part()).get(conversation_id, tenant=tenant)

    async def of_completion(self, completion_id: str, *, tenant: str | None = None) -> Conversation:
        return await (await self._part()).of_completion(completion_id, tenant=tenant)

    async def delete(self, conversation_id: str, *, tenant: str | None = None) -> None:
        await (await self._part()).delete(conversation_id, tenant=tenant)

    async def add_feedback(
        self,
        conversation_id: str,
        *,
        rating: int,
        comment: str | None = None,
        completion_id: str | None = None,
        tenant: str | None = None,
    ) -> Feedback:
        service = await self._part()
        return await service.add_feedback(
            conversation_id, rating=rating, comment=comment, completion_id=completion_id, tenant=tenant
        )

    async def export(self, where: ConversationFilter | None = None) -> AsyncIterator[Conversation]:
        async for conversation in (await self._part()).export(where):
            yield conversation

    async def export_examples(self, where: ConversationFilter | None = None) -> AsyncIterator[dict[str, Any]]:
        async for example in (await self._part()).export_examples(where):
            yield example


class LocalTraining:
    """Fine-tuning in this process: jobs run here (the scheduler starts with the first call)."""

    def __init__(self, part: _Part[TrainingApi]) -> None:
        self._part = part

    async def upload_file(
        self, data: bytes, *, filename: str, purpose: str = "fine-tune", tenant: str | None = None
    ) -> TrainingFile:
        return await (await self._part()).upload_file(data, filename=filename, purpose=purpose, tenant=tenant)

    async def get_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        return await (await self._part()).get_file(file_id, tenant=tenant)

    async def list_files(
        self, *, limit: int = 100, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingFile]:
        return await (await self._part()).list_files(limit=limit, cursor=cursor, tenant=tenant)

    async def delete_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        return await (await self._part()).delete_file(file_id, tenant=tenant)

    async def create_job(self, spec: JobSpec, *, tenant: str | None = None) -> TrainingJob:
        return await (await self._part()).create_job(spec, tenant=tenant)

    async def get_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        return await (await self._part()).get_job(job_id, tenant=tenant)

    async def list_jobs(
        self, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingJob]:
        return await (await self._part()).list_jobs(limit=limit, cursor=cursor, tenant=tenant)

    async def events(
        self, job_id: str, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[JobEvent]:
        return await (await self._part()).events(job_id, limit=limit, cursor=cursor, tenant=tenant)

    async def checkpoints(self, job_id: str, *, tenant: str | None = None) -> list[Checkpoint]:
        return await (await self._part()).checkpoints(job_id, tenant=tenant)

    async def cancel_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        return await (await self._part()).cancel_job(job_id, tenant=tenant)


class LocalApplication:
    """``mindfu_core.application.Application`` in this process, started part by part as calls need them;
    ``close`` releases whatever was started. Chat and health start the whole application (the engine
    loads); documents, retrieval, embeddings and conversations open only their stores; training reads and
    writes jobs without running any, unless ``training`` is true (then this process's scheduler runs them,
    sharing the database's jobs with any other scheduler by their leases)."""

    def __init__(self, container: Container, *, training: bool = False) -> None:
        self._container = container
        self._services = _Part(self._start_all)
        self._training = training
        self.chat = LocalChat(_Part(self._chat))
        self.documents = LocalDocuments(_Part(self._ingestion), container.chunking_policy())
        self.retrieval = LocalRetrieval(_Part(self._retriever), container.retrieval_defaults())
        self.embeddings = LocalEmbeddings(_Part(self._embeddings))
        self.conversations = LocalConversations(_Part(self._conversations))
        self.training = LocalTraining(_Part(self._training_api))
        self.keys = LocalKeys(_Part(self._keys))

    async def _start_all(self) -> Services:
        return await start(self._container, training=self._training)

    async def _chat(self) -> ChatApi:
        return (await self._services()).chat

    async def _training_api(self) -> TrainingApi:
        if self._training:  # jobs run here: the whole application starts, with the scheduler
            return (await self._services()).training
        reader = await resolve(self._container.training_reader)
        return reader if reader is not None else TrainingUnavailable(NotFound(TRAINING_OFF))

    async def _ingestion(self) -> IngestionService:
        found = await resolve(self._container.ingestion_service)
        assert isinstance(found, IngestionService)
        return found

    async def _retriever(self) -> Retriever:
        found = await resolve(self._container.retriever)
        assert isinstance(found, Retriever)
        return found

    async def _embeddings(self) -> EmbeddingService:
        return EmbeddingService(await resolve(self._container.embedder))

    async def _conversations(self) -> ConversationService:
        found = await resolve(self._container.conversation_service)
        assert isinstance(found, ConversationService)
        return found

    async def _keys(self) -> KeyService:
        found = await resolve(self._container.key_service)
        assert isinstance(found, KeyService)
        return found

    async def health(self) -> Health:
        return await (await self._services()).health()

    async def close(self) -> None:
        await stop(self._container)
