"""Core requests to OpenAI API bodies; an upstream's streamed chunks and errors in the core's terms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    FinishReason,
    GenerationRequest,
    Message,
    ResponseFormatType,
    TextRequest,
    TokenLogprob,
    ToolCallDelta,
    ToolChoiceMode,
    TopLogprob,
    Usage,
)
from mindfu_core.domain.examples import openai_message
from mindfu_core.errors import (
    ContextLengthExceeded,
    EngineFailure,
    InvalidRequest,
    MindFuError,
    Overloaded,
    UpstreamUnavailable,
)
from mindfu_core.services.tool_text import tool_schema

_FINISH = {reason.value: reason for reason in FinishReason}
#: Words upstreams use when a prompt does not fit (vLLM, llama.cpp's servers, Ollama).
_CONTEXT_WORDS = ("context length", "context window", "maximum context", "exceed_context", "too long")


def message_dict(message: Message) -> dict[str, Any]:
    """A message as OpenAI-compatible servers take it."""
    return openai_message(message)


def request_body(
    request: GenerationRequest, model: str, defaults: Mapping[str, float | None] | None = None
) -> tuple[str, dict[str, Any]]:
    """The path (``chat/completions`` or ``completions``) and streaming body for one choice of ``request``;
    ``defaults`` (temperature, top_p) fill what the request leaves unset, else the upstream's own apply."""
    sampling = request.sampling
    body: dict[str, Any] = {"model": model, "stream": True, "stream_options": {"include_usage": True}}
    for name, value in (("temperature", sampling.temperature), ("top_p", sampling.top_p)):
        chosen = value if value is not None else (defaults or {}).get(name)
        if chosen is not None:
            body[name] = chosen
    if sampling.max_tokens is not None:
        body["max_tokens"] = sampling.max_tokens
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.presence_penalty:
        body["presence_penalty"] = sampling.presence_penalty
    if sampling.frequency_penalty:
        body["frequency_penalty"] = sampling.frequency_penalty
    # the sampling extensions that vLLM and llama.cpp's servers accept
    for name, value in (("top_k", sampling.top_k), ("min_p", sampling.min_p)):
        if value is not None:
            body[name] = value
    if sampling.repeat_penalty is not None:  # vLLM's name, and llama.cpp's servers' name
        body["repetition_penalty"] = body["repeat_penalty"] = sampling.repeat_penalty
    if isinstance(request, TextRequest):
        body.update(prompt=request.prompt, echo=request.echo)
        if sampling.logprobs:
            body["logprobs"] = max(sampling.top_logprobs, 1)
        return "completions", body
    assert isinstance(request, ChatRequest)
    body["messages"] = [message_dict(m) for m in request.messages]
    if sampling.logprobs:
        body.update(logprobs=True, top_logprobs=sampling.top_logprobs)
    if request.tools and request.tool_choice.mode is not ToolChoiceMode.NONE:
        body["tools"] = [tool_schema(t) for t in request.tools]
        choice = request.tool_choice
        if choice.mode is ToolChoiceMode.FUNCTION:
            body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            body["tool_choice"] = choice.mode.value
    fmt = request.response_format
    if fmt.type is ResponseFormatType.JSON_OBJECT:
        body["response_format"] = {"type": "json_object"}
    elif fmt.type is ResponseFormatType.JSON_SCHEMA:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": fmt.name or "response", "schema": dict(fmt.schema or {})},
        }
    return "chat/completions", body


def _logprobs(raw: Any) -> tuple[TokenLogprob, ...]:
    if not isinstance(raw, dict):
        return ()
    content = raw.get("content")
    if isinstance(content, list):  # chat
        return tuple(
            TokenLogprob(
                token=item.get("token", ""),
                logprob=float(item.get("logprob", 0.0)),
                top=tuple(
                    TopLogprob(token=t.get("token", ""), logprob=float(t.get("logprob", 0.0)))
                    for t in item.get("top_logprobs") or ()
                ),
            )
            for item in content
        )
    tokens, values = raw.get("tokens") or [], raw.get("token_logprobs") or []
    tops = raw.get("top_logprobs") or [None] * len(tokens)
    return tuple(
        TokenLogprob(
            token=token,
            logprob=float(value or 0.0),
            top=tuple(TopLogprob(token=k, logprob=float(v)) for k, v in (top or {}).items()),
        )
        for token, value, top in zip(tokens, values, tops, strict=False)
    )


def chunk_deltas(chunk: dict[str, Any], index: int) -> tuple[list[ChatDelta], Usage | None]:
    """The deltas of one streamed chunk (re-numbered as choice ``index``), and its usage when it has one."""
    deltas: list[ChatDelta] = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        text = (delta or {}).get("content") if delta is not None else choice.get("text")
        pieces = tuple(
            ToolCallDelta(
                index=int(call.get("index", 0)),
                id=call.get("id") or None,
                name=(call.get("function") or {}).get("name") or None,
                arguments=(call.get("function") or {}).get("arguments") or "",
            )
            for call in (delta or {}).get("tool_calls") or ()
        )
        reason = choice.get("finish_reason")
        finish = _FINISH.get(reason, FinishReason.STOP) if reason else None
        # vLLM's server names the stop string that matched (OpenAI's does not)
        matched = choice.get("stop_reason")
        out = ChatDelta(
            index=index,
            content=text or "",
            tool_call_deltas=pieces,
            logprobs=_logprobs(choice.get("logprobs")),
            finish_reason=finish,
            stop_sequence=matched if finish is FinishReason.STOP and isinstance(matched, str) else None,
        )
        if out.content or out.tool_call_deltas or out.logprobs or out.finish_reason:
            deltas.append(out)
    usage = chunk.get("usage")
    if not isinstance(usage, dict):
        return deltas, None
    return deltas, Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=_cached_tokens(usage),
    )


def completion_deltas(completion: dict[str, Any], index: int) -> tuple[list[ChatDelta], Usage | None]:
    """A whole (non-streamed) completion as the deltas a stream of it would have had."""
    choices = []
    for choice in completion.get("choices") or ():
        message = choice.get("message")
        if message is not None:
            calls = [
                {**call, "index": position} for position, call in enumerate(message.get("tool_calls") or ())
            ]
            delta: dict[str, Any] = {"content": message.get("content"), "tool_calls": calls}
            choices.append({"delta": delta, "finish_reason": choice.get("finish_reason")})
        else:
            choices.append({"text": choice.get("text"), "finish_reason": choice.get("finish_reason")})
        choices[-1]["stop_reason"] = choice.get("stop_reason")
    return chunk_deltas({"choices": choices, "usage": completion.get("usage")}, index)


def error_message(body: bytes) -> str:
    """The message of an upstream's error body (OpenAI's shape, or whatever text it sent)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:500] or "no message"
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)[:500]
    return str(error)[:500]


def status_error(status: int, message: str, *, retry_after: float | None, upstream: str) -> MindFuError:
    """An upstream's HTTP error in MindFu's terms (its message kept where the client caused it)."""
    if status in (400, 422):
        if any(word in message.lower() for word in _CONTEXT_WORDS):
            return ContextLengthExceeded(message, param="messages")
        return InvalidRequest(message)
    if status == 404:  # MindFu's settings name a route or model the upstream does not have
        return EngineFailure(
            f"the upstream at {upstream} answered 404 ({message}): MINDFU_LLM__BASE_URL must be its OpenAI "
            "API root (usually ending in /v1) and MINDFU_LLM__UPSTREAM_MODEL a model it serves"
        )
    if status == 429:
        return Overloaded(f"the upstream at {upstream} is busy: {message}", retry_after=retry_after or 1.0)
    if status in (401, 403):
        return EngineFailure(f"the upstream at {upstream} refused MindFu's credentials ({status}): {message}")
    if status == 500:  # the upstream's own failure: retrying the same request would fail the same way
        return EngineFailure(f"the upstream at {upstream} failed (500): {message}")
    if status >= 500:
        return UpstreamUnavailable(
            f"the upstream at {upstream} failed ({status}): {message}", retry_after=retry_after or 1.0
        )
    return EngineFailure(f"the upstream at {upstream} answered {status}: {message}")


def _cached_tokens(usage: dict[str, Any]) -> int:
    """An upstream's ``usage.prompt_tokens_details.cached_tokens`` (vLLM and OpenAI report it), else 0."""
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, dict):
        return 0
    return int(details.get("cached_tokens") or 0)
