"""The application in this process: the services the container starts, as the edges serve them
(``mindfu_core.application.Application``), and the functions that start and stop them."""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any

from mindfu_adapters.container import Container
from mindfu_adapters.store.conversation_log import DurableCompletionLog
from mindfu_core.application import Health, TrainingApi, TrainingUnavailable
from mindfu_core.errors import NotFound
from mindfu_core.ports.conversation_store import CompletionLog
from mindfu_core.services.auth import KeyService
from mindfu_core.services.chat import ChatService
from mindfu_core.services.conversations import ConversationService
from mindfu_core.services.embeddings import EmbeddingService
from mindfu_core.services.ingestion import IngestionService
from mindfu_core.services.retrieval import Retriever
from mindfu_core.services.training import TrainingService

TRAINING_OFF = "fine-tuning is turned off on this server (MINDFU_TRAINING__ENABLED)"


@dataclass(frozen=True, slots=True)
class Services:
    """The application in this process (``mindfu_core.application.Application``): what the edges serve."""

    chat: ChatService
    documents: IngestionService
    retrieval: Retriever
    embeddings: EmbeddingService
    conversations: ConversationService
    keys: KeyService
    completion_log: CompletionLog | None = None  # for health detail (queue depth, failures)
    # fine-tuning runs in the process that holds the engine
    training: TrainingApi = field(default_factory=lambda: TrainingUnavailable(NotFound(TRAINING_OFF)))

    async def health(self) -> Health:
        """Ready when every engine is; the conversation log is detail only (chats never wait for it)."""
        engines: list[dict[str, Any]] = [
            {"model": engine.model_info().id, **asdict(engine.stats())} for engine in self.chat.engines()
        ]
        detail: dict[str, Any] = {"engines": engines}
        if isinstance(self.completion_log, DurableCompletionLog):
            detail["conversation_log"] = asdict(self.completion_log.stats())
        return Health(ready=all(entry["ready"] for entry in engines), detail=detail)


async def resolve(provider: Any) -> Any:
    """The provider's object; providers that depend on async resources answer with awaitables."""
    made = provider()
    if inspect.isawaitable(made):
        made = await made
    return made


async def start(container: Container, *, training: bool = True) -> Services:
    """Start what the services need (the engine loads here, the database is migrated) and return them.

    ``training=False`` leaves the fine-tuning scheduler out (a one-off process such as ``mindfu chat`` must
    not pick up the server's queued jobs)."""
    chat = await resolve(container.chat_service)
    assert isinstance(chat, ChatService)
    service: TrainingService | None = await resolve(container.training_service) if training else None
    why = TRAINING_OFF if training else "this process does not run fine-tuning (the server does)"
    return Services(
        chat=chat,
        documents=await resolve(container.ingestion_service),
        retrieval=await resolve(container.retriever),
        embeddings=EmbeddingService(await resolve(container.embedder)),
        conversations=await resolve(container.served_conversations),
        keys=await resolve(container.key_service),
        completion_log=await resolve(container.completion_log),
        training=service if service is not None else TrainingUnavailable(NotFound(why)),
    )


async def start_conversations(container: Container) -> ConversationService:
    """Only the conversation store (no engine, no logging queue): for the CLI's ``conversations``."""
    service = await resolve(container.conversation_service)
    assert isinstance(service, ConversationService)
    return service


async def start_ingestion(container: Container) -> IngestionService:
    """Only what ingestion needs (no LLM engine): for the CLI's ``ingest`` and ``documents``."""
    service = await resolve(container.ingestion_service)
    assert isinstance(service, IngestionService)
    return service


async def stop(container: Container) -> None:
    """Release every resource the container started (the conversation log flushes what it was handed)."""
    result = container.shutdown_resources()
    if inspect.isawaitable(result):
        await result
