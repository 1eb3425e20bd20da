"""The application interface: what an edge (HTTP, gRPC, CLI) asks of MindFu.

The in-process services implement it, and so does the gRPC client of a remote core, so the HTTP facade
serves either one unchanged (``mindfu serve`` or ``mindfu serve --role gateway``).
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mindfu_core.domain.chat import ChatRequest, ChatResult, ChatStream, GenerationRequest, ModelInfo
from mindfu_core.domain.conversations import (
    CallContext,
    Conversation,
    ConversationFilter,
    ConversationPage,
    Feedback,
)
from mindfu_core.domain.documents import ChunkingPolicy, Document, IngestResult, ScoredChunk
from mindfu_core.domain.embeddings import Embeddings
from mindfu_core.domain.pages import Page
from mindfu_core.domain.principals import ApiKey, NewApiKey, Principal
from mindfu_core.domain.retrieval import RetrievalOptions, RetrievalOverrides
from mindfu_core.domain.training import Checkpoint, JobEvent, JobSpec, TrainingFile, TrainingJob
from mindfu_core.errors import MindFuError


class ChatApi(Protocol):
    """Chat and text completions over the served models (``ChatService``)."""

    async def list_models(self, *, tenant: str | None = ...) -> list[ModelInfo]: ...

    async def get_model(self, model_id: str, *, tenant: str | None = ...) -> ModelInfo: ...

    async def count_tokens(self, request: ChatRequest) -> int: ...

    async def complete(self, request: GenerationRequest, context: CallContext = ...) -> ChatResult: ...

    async def stream(self, request: GenerationRequest, context: CallContext = ...) -> ChatStream: ...


class DocumentApi(Protocol):
    """Ingestion and the document registry (``IngestionService``). Documents and collections are
    ``tenant``'s: another tenant's are not found, and never share a collection; a client of a remote server
    leaves the tenant to the server, which knows the caller's from its credentials."""

    @property
    def policy(self) -> ChunkingPolicy: ...

    async def ingest(
        self,
        data: bytes,
        *,
        filename: str,
        collection: str = ...,
        metadata: Mapping[str, Any] | None = ...,
        policy: ChunkingPolicy | None = ...,
        chunk: bool = ...,
        tenant: str = ...,
    ) -> IngestResult: ...

    async def ingest_text(
        self,
        content: str,
        *,
        name: str,
        collection: str = ...,
        metadata: Mapping[str, Any] | None = ...,
        policy: ChunkingPolicy | None = ...,
        chunk: bool = ...,
        tenant: str = ...,
    ) -> IngestResult: ...

    async def get(self, document_id: str, *, tenant: str = ...) -> Document: ...

    async def list(
        self, *, collection: str | None = ..., limit: int = ..., cursor: str | None = ..., tenant: str = ...
    ) -> Page[Document]: ...

    async def delete(self, document_id: str, *, tenant: str = ...) -> Document: ...


class RetrievalApi(Protocol):
    """What a query retrieves from ``tenant``'s documents, and the options requests start from
    (``Retriever``)."""

    @property
    def defaults(self) -> RetrievalOptions: ...

    def options(self, overrides: RetrievalOverrides = ...) -> RetrievalOptions: ...

    async def search(
        self, query: str, options: RetrievalOptions, *, tenant: str = ...
    ) -> list[ScoredChunk]: ...


class EmbeddingApi(Protocol):
    """The embedding model (``EmbeddingService``)."""

    async def embed(
        self, model: str, texts: Sequence[str], *, dimensions: int | None = ...
    ) -> Embeddings: ...


class ConversationApi(Protocol):
    """Review of the logged conversations (``ConversationService``).

    ``tenant`` (and a filter's ``tenant``) keeps a caller to its own tenant's conversations: another
    tenant's are not found. ``None`` is every tenant's, for the operator's own tools. A client of a remote
    server leaves it to the server, which knows the caller's tenant from its credentials.
    """

    async def list(
        self, where: ConversationFilter | None = ..., *, limit: int = ..., cursor: str | None = ...
    ) -> ConversationPage: ...

    async def get(self, conversation_id: str, *, tenant: str | None = ...) -> Conversation: ...

    async def of_completion(self, completion_id: str, *, tenant: str | None = ...) -> Conversation: ...

    async def delete(self, conversation_id: str, *, tenant: str | None = ...) -> None: ...

    async def add_feedback(
        self,
        conversation_id: str,
        *,
        rating: int,
        comment: str | None = ...,
        completion_id: str | None = ...,
        tenant: str | None = ...,
    ) -> Feedback: ...

    def export(self, where: ConversationFilter | None = ...) -> AsyncIterator[Conversation]: ...

    def export_examples(self, where: ConversationFilter | None = ...) -> AsyncIterator[dict[str, Any]]: ...


class TrainingApi(Protocol):
    """Fine-tuning: training files and jobs (``TrainingService``, or a remote core's through gRPC;
    ``TrainingUnavailable`` where the application does not fine-tune)."""

    async def upload_file(
        self, data: bytes, *, filename: str, purpose: str = ..., tenant: str | None = ...
    ) -> TrainingFile: ...

    async def get_file(self, file_id: str, *, tenant: str | None = ...) -> TrainingFile: ...

    async def list_files(
        self, *, limit: int = ..., cursor: str | None = ..., tenant: str | None = ...
    ) -> Page[TrainingFile]: ...

    async def delete_file(self, file_id: str, *, tenant: str | None = ...) -> TrainingFile: ...

    async def create_job(self, spec: JobSpec, *, tenant: str | None = ...) -> TrainingJob: ...

    async def get_job(self, job_id: str, *, tenant: str | None = ...) -> TrainingJob: ...

    async def list_jobs(
        self, *, limit: int = ..., cursor: str | None = ..., tenant: str | None = ...
    ) -> Page[TrainingJob]: ...

    async def events(
        self, job_id: str, *, limit: int = ..., cursor: str | None = ..., tenant: str | None = ...
    ) -> Page[JobEvent]: ...

    async def checkpoints(self, job_id: str, *, tenant: str | None = ...) -> list[Checkpoint]: ...

    async def cancel_job(self, job_id: str, *, tenant: str | None = ...) -> TrainingJob: ...


class KeyApi(Protocol):
    """Who calls, and the API keys (``KeyService``). ``caller`` is the principal an edge authenticated; a
    client of a remote server leaves it to the server, which knows the caller from its credentials."""

    async def whoami(self, credentials: str | None) -> Principal: ...

    async def create(
        self, caller: Principal, *, tenant: str, scopes: Iterable[str], name: str | None = ...
    ) -> NewApiKey: ...

    async def list(self, caller: Principal, *, tenant: str | None = ...) -> list[ApiKey]: ...

    async def revoke(self, caller: Principal, key_id: str) -> ApiKey: ...


class TrainingUnavailable:
    """The ``TrainingApi`` of an application that does not fine-tune: every call raises ``error`` (such as
    ``NotFound`` when fine-tuning is turned off), which the edges answer as they answer any error."""

    def __init__(self, error: MindFuError) -> None:
        self.error = error

    def _fresh(self) -> MindFuError:
        # a copy per call: raising one instance again and again would grow its traceback without end
        return copy.copy(self.error)

    async def upload_file(
        self, data: bytes, *, filename: str, purpose: str = "fine-tune", tenant: str | None = None
    ) -> TrainingFile:
        raise self._fresh()

    async def get_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        raise self._fresh()

    async def list_files(
        self, *, limit: int = 100, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingFile]:
        raise self._fresh()

    async def delete_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        raise self._fresh()

    async def create_job(self, spec: JobSpec, *, tenant: str | None = None) -> TrainingJob:
        raise self._fresh()

    async def get_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        raise self._fresh()

    async def list_jobs(
        self, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingJob]:
        raise self._fresh()

    async def events(
        self, job_id: str, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[JobEvent]:
        raise self._fresh()

    async def checkpoints(self, job_id: str, *, tenant: str | None = None) -> list[Checkpoint]:
        raise self._fresh()

    async def cancel_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        raise self._fresh()


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """Readiness and its detail (engines, queues, the core a gateway talks to)."""

    ready: bool
    detail: Mapping[str, Any] = field(default_factory=dict)


class Application(Protocol):
    """Everything an edge serves."""

    @property
    def chat(self) -> ChatApi: ...

    @property
    def documents(self) -> DocumentApi: ...

    @property
    def retrieval(self) -> RetrievalApi: ...

    @property
    def embeddings(self) -> EmbeddingApi: ...

    @property
    def conversations(self) -> ConversationApi: ...

    @property
    def training(self) -> TrainingApi: ...

    @property
    def keys(self) -> KeyApi: ...

    async def health(self) -> Health: ...
