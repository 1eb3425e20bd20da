"""The composition root: one dependency-injector container picks every adapter from settings.

Adapter modules are imported inside the factories below, so only the selected technology is loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from dependency_injector import containers, providers

from mindfu_adapters.llm.backends import backend_of, resolve_model
from mindfu_adapters.llm_settings import AnyLlmSettings, InProcessSettings
from mindfu_adapters.settings import Settings
from mindfu_adapters.wiring import auth as auth_wiring
from mindfu_adapters.wiring import rag as rag_wiring
from mindfu_adapters.wiring import training as training_wiring
from mindfu_core.domain.documents import ChunkingPolicy
from mindfu_core.errors import ConfigurationError
from mindfu_core.ports.conversation_store import CompletionLog, ConversationStore
from mindfu_core.ports.document_registry import DocumentRegistry
from mindfu_core.ports.embedder import Embedder
from mindfu_core.ports.llm import LLMEngine, ServesAdapters, StartsOnLoop
from mindfu_core.services.chat import ChatService
from mindfu_core.services.conversations import ConversationRecorder, ConversationService
from mindfu_core.services.ingestion import IngestionLimits, IngestionService
from mindfu_core.services.quotas import KeyQuotas
from mindfu_core.services.retrieval import Retriever

if TYPE_CHECKING:
    from mindfu_adapters.store.sql import Database


def build_engine(llm: AnyLlmSettings, data_dir: Path | None = None) -> LLMEngine:
    """The engine ``llm`` describes (its backend builds it)."""
    return backend_of(llm).build(llm, data_dir)


def describe_model(llm: AnyLlmSettings, data_dir: Path | None = None) -> tuple[str, str]:
    """(the id clients use, what the engine loads or reaches); ``ConfigurationError`` when unknown."""
    backend = backend_of(llm)
    return backend.model_id(llm), backend.source(llm, data_dir)


def _with_adapters(engines: list[LLMEngine]) -> list[LLMEngine]:
    """Every engine, each followed by the engines of its LoRA adapters."""
    served: list[LLMEngine] = []
    for engine in engines:
        served.append(engine)
        if isinstance(engine, ServesAdapters):
            served.extend(engine.adapter_engines())
    return served


def prepare_models(settings: Settings, *, force: bool = False) -> Path:
    """Build the offline embedding model (ONNX all-MiniLM-L6-v2) into the data directory; idempotent."""
    from mindfu_adapters.embedder.prepare import default_model_dir, prepare_minilm

    return prepare_minilm(default_model_dir(settings.data_dir), force=force)


def prepare_trainable(settings: Settings, *, force: bool = False) -> Path | None:
    """Trainable Hugging Face weights of the served GGUF (``None`` without the training stack installed);
    a model vLLM serves from a folder is such weights already, and so are the ones
    ``MINDFU_TRAINING__BASE_MODELS`` names for the served model (nothing is converted then)."""
    as_served = backend_of(settings.llm).trainable_as_served(settings.llm)
    if as_served is not None:
        return as_served
    configured = settings.training.base_models.get(served_model_id(settings) or "")
    if configured is not None:
        return configured.expanduser()
    if not isinstance(settings.llm, InProcessSettings):
        return None  # an upstream's weights are elsewhere: MINDFU_TRAINING__BASE_MODELS names them
    return training_wiring.prepare_trainable(settings, resolve_model(settings.llm), force=force)


def served_model_id(settings: Settings) -> str | None:
    """The id clients use for the configured engine's model (``None`` when the settings cannot say)."""
    try:
        return backend_of(settings.llm).model_id(settings.llm)
    except ConfigurationError:
        return None


def model_aliases(settings: Settings) -> dict[str, str]:
    """Alias -> served model id, from every model's ``aliases``."""
    aliases: dict[str, str] = {}
    for llm in (settings.llm, *settings.models):
        for alias in llm.aliases:
            if alias in aliases:
                raise ConfigurationError(
                    f"the model alias {alias!r} is given twice (MINDFU_LLM / MINDFU_MODELS)"
                )
            aliases[alias] = backend_of(llm).model_id(llm)
    return aliases


def _embedder(settings: Settings) -> Embedder:
    return rag_wiring.embedder(settings, hub_cache=pulled_models_dir(settings))


def pulled_models_dir(settings: Settings) -> Path:
    """Where ``mindfu models pull`` keeps fastembed catalogue models."""
    return settings.data_dir.expanduser() / "models" / "fastembed"


def pull_model(settings: Settings, model_name: str) -> Path:
    """Download a fastembed catalogue model (explicitly: nothing else in MindFu reaches a model hub)."""
    from mindfu_adapters.embedder.fastembed import pull_model as pull

    return pull(model_name, pulled_models_dir(settings))


def preflight(settings: Settings) -> None:
    """Cheap checks of what start-up will need (the model file), so mistakes surface as one clear message."""
    for llm in (settings.llm, *settings.models):
        backend_of(llm).preflight(llm)
    model_aliases(settings)


async def _started(llm: AnyLlmSettings, data_dir: Path) -> LLMEngine:
    """Build an engine off the event loop, then let it finish starting on the loop (vLLM loads its LoRA
    adapters there); closed again if that fails."""
    engine = await asyncio.to_thread(build_engine, llm, data_dir)
    if isinstance(engine, StartsOnLoop):
        try:
            await engine.start()
        except BaseException:
            await engine.aclose()
            raise
    return engine


async def _engine_resource(llm: AnyLlmSettings, data_dir: Path) -> AsyncIterator[LLMEngine]:
    """Load the selected engine off the event loop; release it at shutdown."""
    backend_of(llm)  # an unknown backend fails here, before anything loads
    engine = await _started(llm, data_dir)
    try:
        yield engine
    finally:
        await engine.aclose()


async def _more_engines_resource(settings: Settings) -> AsyncIterator[list[LLMEngine]]:
    """The engines of ``MINDFU_MODELS``, served beside the main one."""
    engines: list[LLMEngine] = []
    try:
        for llm in settings.models:
            engines.append(await _started(llm, settings.data_dir))
        yield engines
    finally:
        for engine in engines:
            await engine.aclose()


async def _database_resource(settings: Settings) -> AsyncIterator[Database]:
    """The shared SQL engine, migrated to the newest schema first unless told not to."""
    from mindfu_adapters.store.sql import Database

    database = Database(
        settings.database_url(), echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    try:
        upgrade = settings.database.auto_migrate
        await database.ensure_schema(upgrade=database.dialect == "sqlite" if upgrade is None else upgrade)
        yield database
    finally:
        await database.aclose()


def _document_registry(database: Database) -> DocumentRegistry:
    from mindfu_adapters.store.documents import SqlDocumentRegistry

    return SqlDocumentRegistry(database)


def _conversation_store(database: Database) -> ConversationStore:
    from mindfu_adapters.store.conversations import SqlConversationStore

    return SqlConversationStore(database)


async def _completion_log_resource(
    settings: Settings, store: ConversationStore
) -> AsyncIterator[CompletionLog | None]:
    """The durable queue and its background writer (``None`` with logging off); flushed at shutdown."""
    if not settings.conversations.enabled:
        yield None
        return
    from mindfu_adapters.store.conversation_log import DurableCompletionLog, LogPolicy

    config = settings.conversations
    log = DurableCompletionLog(
        settings.spool_dir(),
        store,
        LogPolicy(
            batch_size=config.batch_size,
            linger_s=config.linger_s,
            idle_wait_s=config.idle_wait_s,
            retry_initial_s=config.retry_initial_s,
            retry_max_s=config.retry_max_s,
            shutdown_flush_s=config.shutdown_flush_s,
            retention_interval_s=config.retention_interval_s,
        ),
        retention=ConversationService(store, retention_days=config.retention_days),
    )
    await log.start()
    try:
        yield log
    finally:
        await log.aclose()


def _recorder(
    settings: Settings, log: CompletionLog | None, store: ConversationStore
) -> ConversationRecorder | None:
    if log is None:
        return None
    return ConversationRecorder(log, store, lookup_timeout=settings.conversations.lookup_timeout_ms / 1000)


class Container(containers.DeclarativeContainer):
    """Wires settings to adapters to services; ``start`` and ``stop`` below run its resources."""

    settings = providers.Dependency(instance_of=Settings)
    llm_settings = providers.Callable(lambda s: s.llm, settings)
    llm_engine = providers.Resource(
        _engine_resource, llm_settings, providers.Callable(lambda s: s.data_dir, settings)
    )
    more_engines = providers.Resource(_more_engines_resource, settings)
    database = providers.Resource(_database_resource, settings)
    document_registry = providers.Singleton(_document_registry, database)
    key_service = providers.Singleton(auth_wiring.key_service, settings, database)
    embedder = providers.Singleton(_embedder, settings)
    vector_store = providers.Resource(rag_wiring.vector_store_resource, settings, embedder)
    parser = providers.Singleton(rag_wiring.parser)
    sparse_encoder = providers.Singleton(rag_wiring.sparse_encoder, settings)
    retrieval_defaults = providers.Callable(rag_wiring.retrieval_defaults, settings)
    chunking_policy = providers.Callable(
        lambda s: ChunkingPolicy(size=s.rag.chunk_size, overlap=s.rag.chunk_overlap), settings
    )
    retriever = providers.Singleton(
        Retriever, embedder, vector_store, defaults=retrieval_defaults, sparse=sparse_encoder
    )
    ingestion_service = providers.Singleton(
        IngestionService,
        parser=parser,
        embedder=embedder,
        store=vector_store,
        registry=document_registry,
        sparse=sparse_encoder,
        policy=chunking_policy,
        limits=providers.Callable(
            lambda s: IngestionLimits(max_bytes=s.rag.max_upload_bytes, batch_size=s.embedding.batch_size),
            settings,
        ),
    )
    conversation_store = providers.Singleton(_conversation_store, database)
    completion_log = providers.Resource(_completion_log_resource, settings, conversation_store)
    recorder = providers.Singleton(_recorder, settings, completion_log, conversation_store)
    conversation_service = providers.Singleton(
        ConversationService,
        conversation_store,
        retention_days=providers.Callable(lambda s: s.conversations.retention_days, settings),
    )
    # what the server's edges read: a completion just answered may still be in the log's queue
    served_conversations = providers.Singleton(
        ConversationService,
        conversation_store,
        retention_days=providers.Callable(lambda s: s.conversations.retention_days, settings),
        log=completion_log,
    )
    training_store = providers.Singleton(training_wiring.training_store, database)
    chat_service = providers.Singleton(
        ChatService,
        engines=providers.Callable(
            lambda main, more: _with_adapters([main, *more]), llm_engine, more_engines
        ),
        limits=providers.Callable(lambda s: s.request_limits(), settings),
        quotas=providers.Callable(
            lambda s: KeyQuotas(
                concurrency=s.limits.key_concurrency, tokens_per_minute=s.limits.key_tokens_per_minute
            ),
            settings,
        ),
        retriever=retriever,
        recorder=recorder,
        aliases=providers.Callable(model_aliases, settings),
    )
    training_reader = providers.Singleton(
        training_wiring.training_reader,
        settings,
        training_store,
        conversation_service,
        providers.Callable(served_model_id, settings),
    )
    training_service = providers.Resource(
        training_wiring.training_resource,
        settings,
        training_store,
        conversation_service,
        completion_log,
        chat_service,
        build_engine,
        providers.Callable(served_model_id, settings),
    )


def build_container(settings: Settings | None = None) -> Container:
    """A container for ``settings`` (read from the environment and ``mindfu.toml`` when omitted)."""
    return Container(settings=settings or Settings())
