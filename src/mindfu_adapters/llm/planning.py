"""Request planning that every in-process engine shares (llama.cpp and vLLM).

For one request the planner decides:

- how the output is read: plain text, a call the model may make (``auto``), or a forced call;
- what the output must parse as: a forced call's JSON schema, or the response format's;
- the token budget the context leaves, refusing a prompt that does not fit;
- the sampling values, with the engine's defaults where the request gives none.

Each engine then turns the plan into its own terms (a GBNF grammar or vLLM's structured outputs, its
sampler's arguments). So the engines differ only where the libraries do.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mindfu_adapters.llm.shaping import ToolMode
from mindfu_adapters.llm.tool_format import call_grammar_schema
from mindfu_core.domain.chat import (
    ChatRequest,
    GenerationRequest,
    ResponseFormatType,
    SamplingParams,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from mindfu_core.errors import ContextLengthExceeded, InvalidRequest

T = TypeVar("T")


def pick(asked: T | None, default: T) -> T:
    """``asked``, or ``default`` when the request left it out."""
    return default if asked is None else asked


class ConstraintKind(enum.Enum):
    """What a constrained output must be."""

    CALL = "call"  # a forced tool call: call_grammar_schema's schema ("name" written before "arguments")
    JSON_OBJECT = "json_object"  # any JSON object
    JSON_SCHEMA = "json_schema"  # JSON valid against ``schema``


@dataclass(frozen=True, slots=True)
class Constraint:
    kind: ConstraintKind
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputPlan:
    """How a request's output is shaped: tool mode, the tools the model sees, its constraint, and the echo."""

    mode: ToolMode = ToolMode.PLAIN
    tools: Sequence[ToolSpec] = ()
    choice: ToolChoice | None = None
    constraint: Constraint | None = None
    echo: str = ""  # a text request's prompt, when it asked for it back

    @property
    def where(self) -> str:
        """The request field a prompt error names."""
        return "prompt" if self.choice is None else "messages"


def plan_output(request: GenerationRequest, *, logprobs_enabled: bool) -> OutputPlan:
    """The output plan of ``request``; ``InvalidRequest`` for logprobs on an engine started without them."""
    if request.sampling.logprobs and not logprobs_enabled:
        message = "logprobs are not enabled on this engine (start it with MINDFU_LLM__LOGPROBS=true)"
        raise InvalidRequest(message, param="logprobs")
    if not isinstance(request, ChatRequest):
        return OutputPlan(echo=request.prompt if request.echo else "")
    choice = request.tool_choice
    mode, constraint = ToolMode.PLAIN, None
    tools: Sequence[ToolSpec] = ()
    if request.tools and choice.mode is not ToolChoiceMode.NONE:
        tools = request.tools
        if choice.mode in (ToolChoiceMode.REQUIRED, ToolChoiceMode.FUNCTION):
            mode = ToolMode.FORCED
            constraint = Constraint(ConstraintKind.CALL, call_grammar_schema(tools, choice))
        else:
            mode = ToolMode.AUTO
    fmt = request.response_format
    if mode is not ToolMode.FORCED:  # a forced call is the output: the response format does not apply
        if fmt.type is ResponseFormatType.JSON_OBJECT:
            constraint = Constraint(ConstraintKind.JSON_OBJECT)
        elif fmt.type is ResponseFormatType.JSON_SCHEMA:
            constraint = Constraint(ConstraintKind.JSON_SCHEMA, dict(fmt.schema or {}))
    return OutputPlan(mode=mode, tools=tools, choice=choice, constraint=constraint)


class _SamplingSettings(Protocol):
    @property
    def temperature(self) -> float: ...
    @property
    def top_p(self) -> float: ...
    @property
    def top_k(self) -> int: ...
    @property
    def min_p(self) -> float: ...
    @property
    def repeat_penalty(self) -> float: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SamplingDefaults:
    """An engine's sampling settings, used where a request gives none."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float

    @classmethod
    def of(cls, config: _SamplingSettings) -> SamplingDefaults:
        """The defaults an engine's config names."""
        return cls(
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            min_p=config.min_p,
            repeat_penalty=config.repeat_penalty,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Sampling:
    """A request's sampling with every value decided, and the completion's token budget."""

    max_tokens: int
    temperature: float
    top_p: float
    top_k: int  # 0: no top-k
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    stop: tuple[str, ...]
    seed: int | None
    top_logprobs: int | None  # None: no log-probabilities


def plan_sampling(
    sampling: SamplingParams,
    defaults: SamplingDefaults,
    *,
    prompt_tokens: int,
    context_length: int,
    clamp_max_tokens: bool,
    where: str,
) -> Sampling:
    """``sampling`` resolved against ``defaults`` for a prompt of ``prompt_tokens``.

    ``max_tokens`` defaults to what the context leaves. A prompt that leaves nothing is refused with
    ``ContextLengthExceeded``, and so is a larger ``max_tokens``, unless ``clamp_max_tokens`` cuts it to fit.
    """
    budget = context_length - prompt_tokens
    too_many = sampling.max_tokens is not None and sampling.max_tokens > budget
    if budget <= 0 or (too_many and not clamp_max_tokens):
        asked = f" + {sampling.max_tokens} for the completion" if sampling.max_tokens else ""
        raise ContextLengthExceeded(
            f"This model's maximum context length is {context_length} tokens; the request needs "
            f"{prompt_tokens} for the prompt{asked}. Shorten the messages or lower max_tokens.",
            param=where,
        )

    return Sampling(
        max_tokens=min(sampling.max_tokens or budget, budget),
        temperature=pick(sampling.temperature, defaults.temperature),
        top_p=pick(sampling.top_p, defaults.top_p),
        top_k=pick(sampling.top_k, defaults.top_k),
        min_p=pick(sampling.min_p, defaults.min_p),
        repeat_penalty=pick(sampling.repeat_penalty, defaults.repeat_penalty),
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
        stop=tuple(sampling.stop),
        seed=sampling.seed,
        top_logprobs=max(sampling.top_logprobs, 1) if sampling.logprobs else None,
    )
