"""Checks every edge shares: a request that fails them never reaches an engine."""

from __future__ import annotations

import math

from mindfu_core.domain.chat import (
    ChatRequest,
    GenerationRequest,
    ResponseFormatType,
    Role,
    SamplingParams,
    ToolChoiceMode,
)
from mindfu_core.domain.limits import DEFAULT_LIMITS, RequestLimits
from mindfu_core.domain.text import check_request_text
from mindfu_core.errors import InvalidRequest

MAX_TOP_LOGPROBS = 20
#: what engines take as a seed (a signed 64-bit integer) and as top_k (a C int)
SEED_RANGE = (-(2**63), 2**63 - 1)
MAX_TOP_K = 2**31 - 1
MAX_REPEAT_PENALTY = 10.0


def _check_range(value: float, low: float, high: float, param: str) -> None:
    if not low <= value <= high:
        raise InvalidRequest(f"{param} must be between {low:g} and {high:g}, got {value:g}", param=param)


def validate_sampling(sampling: SamplingParams, limits: RequestLimits = DEFAULT_LIMITS) -> None:
    """Reject sampling parameters outside the ranges the OpenAI API documents."""
    if sampling.max_tokens is not None and sampling.max_tokens < 1:
        raise InvalidRequest(f"max_tokens must be at least 1, got {sampling.max_tokens}", param="max_tokens")
    if sampling.temperature is not None:
        _check_range(sampling.temperature, 0.0, 2.0, "temperature")
    if sampling.top_p is not None:
        _check_range(sampling.top_p, 0.0, 1.0, "top_p")
    _check_range(sampling.presence_penalty, -2.0, 2.0, "presence_penalty")
    _check_range(sampling.frequency_penalty, -2.0, 2.0, "frequency_penalty")
    if len(sampling.stop) > limits.max_stop:
        raise InvalidRequest(f"stop takes at most {limits.max_stop} sequences", param="stop")
    if any(not s for s in sampling.stop):
        raise InvalidRequest("stop sequences must not be empty", param="stop")
    if any(len(s) > limits.max_stop_chars for s in sampling.stop):
        raise InvalidRequest(
            f"a stop sequence may have at most {limits.max_stop_chars} characters", param="stop"
        )
    if not 0 <= sampling.top_logprobs <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}", param="top_logprobs")
    if sampling.top_k is not None and not 0 <= sampling.top_k <= MAX_TOP_K:
        raise InvalidRequest(
            f"top_k must be between 0 (off) and {MAX_TOP_K}, got {sampling.top_k}", param="top_k"
        )
    if sampling.min_p is not None:
        _check_range(sampling.min_p, 0.0, 1.0, "min_p")
    penalty = sampling.repeat_penalty
    if penalty is not None and not (math.isfinite(penalty) and 0 < penalty <= MAX_REPEAT_PENALTY):
        raise InvalidRequest(
            f"repeat_penalty must be greater than 0 and at most {MAX_REPEAT_PENALTY:g}, got {penalty}",
            param="repeat_penalty",
        )
    low, high = SEED_RANGE
    if sampling.seed is not None and not low <= sampling.seed <= high:
        raise InvalidRequest("seed must fit in a signed 64-bit integer", param="seed")
    if sampling.top_logprobs and not sampling.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs to be true", param="top_logprobs")


def schema_depth(schema: object) -> int:
    """How deep JSON values nest in ``schema`` (a scalar: 0), walked without recursion."""
    deepest = 0
    pending: list[tuple[object, int]] = [(schema, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: list[object] = list(value.values())
        elif isinstance(value, (list, tuple)):
            children = list(value)
        else:
            continue
        deepest = max(deepest, depth + 1)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def check_size(request: GenerationRequest, limits: RequestLimits) -> None:
    """Refuse at once what would cost minutes to render and tokenize only to be refused then, and text no
    encoder takes."""
    check_request_text(request)
    if isinstance(request, ChatRequest):
        if len(request.messages) > limits.max_messages:
            raise InvalidRequest(
                f"messages may hold at most {limits.max_messages} messages, got {len(request.messages)}",
                param="messages",
            )
        total = 0
        for position, message in enumerate(request.messages):
            size = len(message.content or "") + sum(len(c.arguments) for c in message.tool_calls)
            if size > limits.max_message_chars:
                raise InvalidRequest(
                    f"a message may have at most {limits.max_message_chars} characters, got {size}",
                    param=f"messages[{position}].content",
                )
            total += size
        param = "messages"
        if len(request.tools) > limits.max_tools:
            raise InvalidRequest(f"tools may hold at most {limits.max_tools} tools", param="tools")
        for position, tool in enumerate(request.tools):
            where = f"tools[{position}].function"
            if schema_depth(tool.parameters) > limits.max_tool_schema_depth:
                raise InvalidRequest(
                    f"a tool's parameters may nest at most {limits.max_tool_schema_depth} deep",
                    param=f"{where}.parameters",
                )
    else:
        total, param = len(request.prompt), "prompt"
    if total > limits.max_prompt_chars:
        raise InvalidRequest(
            f"the prompt may have at most {limits.max_prompt_chars} characters, got {total}", param=param
        )


def _validate_chat(request: ChatRequest) -> None:
    if not request.messages:
        raise InvalidRequest("messages must contain at least one message", param="messages")
    tool_names = {tool.name for tool in request.tools}
    if len(tool_names) != len(request.tools):
        raise InvalidRequest("tool names must be unique", param="tools")
    choice = request.tool_choice
    if choice.mode in (ToolChoiceMode.REQUIRED, ToolChoiceMode.FUNCTION) and not request.tools:
        raise InvalidRequest(f"tool_choice '{choice.mode}' needs at least one tool", param="tool_choice")
    if choice.mode is ToolChoiceMode.FUNCTION and choice.name not in tool_names:
        raise InvalidRequest(f"tool_choice names an unknown tool: {choice.name!r}", param="tool_choice")
    fmt = request.response_format
    if fmt.type is ResponseFormatType.JSON_SCHEMA and not fmt.schema:
        raise InvalidRequest("response_format json_schema needs a schema", param="response_format")
    for position, message in enumerate(request.messages):
        if message.role is Role.TOOL and not message.tool_call_id:
            raise InvalidRequest(
                "a tool message needs the tool_call_id it answers", param=f"messages[{position}].tool_call_id"
            )


def validate_request(request: GenerationRequest, limits: RequestLimits = DEFAULT_LIMITS) -> None:
    """Raise ``InvalidRequest`` if ``request`` cannot be served as asked, or costs more than ``limits``
    let one request cost."""
    if not 1 <= request.n <= limits.max_n:
        raise InvalidRequest(f"n must be between 1 and {limits.max_n}, got {request.n}", param="n")
    check_size(request, limits)
    validate_sampling(request.sampling, limits)
    if isinstance(request, ChatRequest):
        _validate_chat(request)
