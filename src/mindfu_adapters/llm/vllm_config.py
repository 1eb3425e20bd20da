"""What ``VllmEngine`` is built from and hands vLLM: its configuration, a prepared request, structured
outputs for a constraint, and vLLM's finish reasons and errors in MindFu's terms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindfu_adapters.llm.planning import Constraint, ConstraintKind
from mindfu_adapters.llm.shaping import ToolMode
from mindfu_adapters.llm.tool_format import tool_schema
from mindfu_core.domain.chat import FinishReason, ToolSpec
from mindfu_core.errors import (
    ConfigurationError,
    ContextLengthExceeded,
    EngineFailure,
    InvalidRequest,
    MindFuError,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class VllmConfig:
    """What the engine needs; the container fills it from settings."""

    model: str  # a Hugging Face model folder (or a hub id where the hub is reachable)
    model_id: str
    context_length: int | None = None  # vLLM's max_model_len; None: the model's own
    dtype: str = "auto"
    tokenizer_mode: str = "auto"  # "mistral" for Mistral models (Devstral) with mistral_common
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    enforce_eager: bool | None = (
        None  # None: eager on CPU (torch.compile's cache misses there), graphs on GPU
    )
    slots: int = 64  # requests handed to vLLM at once (its max_num_seqs)
    max_queue: int = 256
    chat_template: str | None = None
    tool_call_parser: str | None = None  # one of vLLM's parsers; None: MindFu's Hermes-format reading
    logprobs: bool = True
    temperature: float = 1.0  # for requests that leave it unset
    top_p: float = 1.0
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    clamp_max_tokens: bool = True
    adapters: Mapping[str, Path] = field(default_factory=dict)  # served name -> a PEFT LoRA folder
    enable_lora: bool = False  # also without adapters at start (fine-tuning jobs add theirs later)
    max_loras: int = 4
    max_lora_rank: int = 16
    # vLLM's automatic prefix caching: an agent's next turn computes only what follows the prefix it shares
    # with earlier requests (MindFu keeps that prefix stable: services/prompt_layout.py, retrieval.augment)
    enable_prefix_caching: bool = True
    engine_args: Mapping[str, Any] = field(default_factory=dict)  # any other AsyncEngineArgs field


@dataclass(slots=True)
class VllmPrepared:
    prompt_ids: list[int]
    params: Any  # vllm.SamplingParams
    n: int
    mode: ToolMode
    tools: Sequence[ToolSpec]
    echo: str
    parser_request: Any = None  # a vLLM ChatCompletionRequest when a vLLM tool parser reads the output
    copies: int = 1  # n for greedy requests: vLLM generates one choice, read as each of the n


def structured_outputs(constraint: Constraint | None) -> Any:
    """vLLM's structured outputs for a constraint (``None`` without one)."""
    if constraint is None:
        return None
    from vllm.sampling_params import StructuredOutputsParams

    if constraint.kind is ConstraintKind.JSON_OBJECT:
        return StructuredOutputsParams(json_object=True)
    return StructuredOutputsParams(json=dict(constraint.schema or {}))


def finish_reason_of(reason: str) -> FinishReason:
    if reason == "length":
        return FinishReason.LENGTH
    if reason == "abort":
        raise EngineFailure("vLLM aborted the request (the engine is shutting down)")
    return FinishReason.STOP


def as_mindfu_error(exc: Exception) -> MindFuError | None:
    """vLLM's errors as MindFu's (None: not one of vLLM's, or already MindFu's)."""
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

    if isinstance(exc, MindFuError):
        return None
    if isinstance(exc, VLLMValidationError):
        parameter = getattr(exc, "parameter", None)
        if parameter == "input_tokens":
            return ContextLengthExceeded(str(exc), param="messages")
        if "grammar" in str(exc).lower() or "schema" in str(exc).lower():
            return InvalidRequest(f"unsupported JSON schema: {exc}", param="response_format")
        return InvalidRequest(str(exc), param=parameter)
    if isinstance(exc, (EngineDeadError, EngineGenerateError)):
        return EngineFailure(f"the vLLM engine failed: {exc}")
    return None


def engine_args(config: VllmConfig) -> dict[str, Any]:
    """vLLM's ``AsyncEngineArgs`` for ``config`` (``engine_args`` of the config win)."""
    enforce_eager = config.enforce_eager
    if enforce_eager is None:
        from vllm.platforms import current_platform

        enforce_eager = current_platform.is_cpu()
    args: dict[str, Any] = {
        "model": config.model,
        "served_model_name": [config.model_id],
        "tokenizer_mode": config.tokenizer_mode,
        "dtype": config.dtype,
        "tensor_parallel_size": config.tensor_parallel_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "max_num_seqs": config.slots,
        "enforce_eager": enforce_eager,
        "disable_log_stats": True,
        "max_logprobs": 20 if config.logprobs else 0,
        "enable_prefix_caching": config.enable_prefix_caching,
    }
    if config.context_length is not None:
        args["max_model_len"] = config.context_length
    if config.adapters or config.enable_lora:
        args.update(enable_lora=True, max_loras=config.max_loras, max_lora_rank=config.max_lora_rank)
    args.update(config.engine_args)
    return args


def tool_parser_class(name: str) -> Any:
    """vLLM's tool parser called ``name``; ``ConfigurationError`` naming the ones it has otherwise."""
    from vllm.tool_parsers import ToolParserManager

    try:
        return ToolParserManager.get_tool_parser(name)
    except KeyError as exc:
        raise ConfigurationError(
            f"vLLM has no tool parser {name!r} (MINDFU_LLM__TOOL_CALL_PARSER); "
            f"it has {', '.join(sorted(ToolParserManager.list_registered()))}"
        ) from exc


def parser_request(
    parser_class: Any, tokenizer: Any, model_id: str, tools: Sequence[ToolSpec]
) -> tuple[Any, Exception | None]:
    """The vLLM chat request a tool parser reads output for, adjusted by the parser's own hook, and the
    error of a hook that failed (the request then keeps special tokens, which is what MindFu needs of it)."""
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    spec = [{"type": "function", "function": tool_schema(tool)["function"]} for tool in tools]
    request = ChatCompletionRequest(messages=[], model=model_id, tools=spec)
    try:
        parser_class(tokenizer, request.tools).adjust_request(request)
    except Exception as exc:  # a parser's request hook must not fail the chat
        # vLLM 0.32's mistral parser calls mistral-common >= 1.13 without an argument it now requires
        # (TypeError); what MindFu takes from the hook is that the parser sees the calls' special tokens
        request.skip_special_tokens = False
        return request, exc
    return request, None
