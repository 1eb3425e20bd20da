"""Domain requests as MindFu's HTTP API takes them: the inverse of the edge's request models
(``ChatCompletionIn``, ``CompletionIn``, ``JobIn``, ``review_filter``), held to them by round-trip tests."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mindfu_core.domain.chat import (
    ChatRequest,
    GenerationRequest,
    ResponseFormatType,
    SamplingParams,
    TextRequest,
    ToolChoiceMode,
)
from mindfu_core.domain.conversations import CallContext, ConversationFilter
from mindfu_core.domain.documents import Filter
from mindfu_core.domain.examples import openai_message
from mindfu_core.domain.retrieval import RetrievalOptions
from mindfu_core.domain.training import JobSpec


def _sampling(sampling: SamplingParams, *, chat: bool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in ("max_tokens", "temperature", "top_p", "seed", "top_k", "min_p", "repeat_penalty"):
        value = getattr(sampling, name)
        if value is not None:
            body[name] = value
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if sampling.presence_penalty:
        body["presence_penalty"] = sampling.presence_penalty
    if sampling.frequency_penalty:
        body["frequency_penalty"] = sampling.frequency_penalty
    if sampling.logprobs:
        if chat:
            body.update(logprobs=True, top_logprobs=sampling.top_logprobs)
        else:
            body["logprobs"] = sampling.top_logprobs
    return body


def filter_body(where: Filter | None) -> dict[str, Any] | None:
    if where is None:
        return None
    return {"document_ids": list(where.document_ids), "metadata": dict(where.metadata)}


def rag_body(options: RetrievalOptions) -> bool | dict[str, Any]:
    """Retrieval options as ``mindfu.rag`` (every field given, so the server's defaults do not apply)."""
    if not options.enabled:
        return False
    body: dict[str, Any] = {
        "top_k": options.top_k,
        "min_score": options.min_score,
        "collection": options.collection,
        "hybrid": options.hybrid,
    }
    if options.where is not None:
        body["filter"] = filter_body(options.where)
    return body


def generation_body(
    request: GenerationRequest, context: CallContext, *, stream: bool
) -> tuple[str, dict[str, Any]]:
    """The path and body of a chat or text completion request."""
    body: dict[str, Any] = {"model": request.model, "n": request.n, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if isinstance(request, TextRequest):
        body.update(prompt=request.prompt, echo=request.echo, **_sampling(request.sampling, chat=False))
        return "/v1/completions", body
    assert isinstance(request, ChatRequest)
    body.update(chat_body(request))
    extension: dict[str, Any] = {}
    if request.retrieval is not None:
        extension["rag"] = rag_body(request.retrieval)
    if context.conversation_id:
        extension["conversation_id"] = context.conversation_id
    if not context.log:
        extension["log"] = False
    if context.previous_completion_id:
        extension["previous_completion_id"] = context.previous_completion_id
    if extension:
        body["mindfu"] = extension
    if context.user is not None:
        body["user"] = context.user
    return "/v1/chat/completions", body


def chat_body(request: ChatRequest) -> dict[str, Any]:
    """A chat request's messages, tools, tool choice, response format and sampling."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [openai_message(m) for m in request.messages],
        **_sampling(request.sampling, chat=True),
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
            }
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice.mode is ToolChoiceMode.FUNCTION:
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif request.tools or choice.mode is not ToolChoiceMode.NONE:
        body["tool_choice"] = choice.mode.value
    fmt = request.response_format
    if fmt.type is ResponseFormatType.JSON_OBJECT:
        body["response_format"] = {"type": "json_object"}
    elif fmt.type is ResponseFormatType.JSON_SCHEMA:
        spec: dict[str, Any] = {"name": fmt.name or "response", "schema": dict(fmt.schema or {})}
        body["response_format"] = {"type": "json_schema", "json_schema": spec}
    return body


def filter_params(where: ConversationFilter | None) -> dict[str, Any]:
    """A conversation filter as the listing's and the export's query parameters."""
    if where is None:
        return {}
    params: dict[str, Any] = {}
    for name, value in asdict(where).items():
        if value is None or name in ("api_key_id", "tenant"):  # the server's, from the caller's key
            continue
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif hasattr(value, "value"):
            value = value.value
        params[name] = value
    return params


def job_body(spec: JobSpec) -> dict[str, Any]:
    """``POST /v1/fine_tuning/jobs`` for ``spec``: OpenAI's fields, every other setting under ``mindfu``."""
    hp = spec.hyperparameters
    settings = asdict(hp)
    settings.pop("seed")
    settings.pop("batch_size")
    quality = asdict(spec.quality)
    quality["statuses"] = [s.value for s in spec.quality.statuses]
    extension: dict[str, Any] = {
        **{k: v for k, v in settings.items() if v is not None},
        "source": spec.source.value,
        "quality": quality,
        "validation_fraction": spec.split.validation_fraction,
        "split_seed": spec.split.seed,
        "register": spec.register.value,
        "experiment": spec.experiment,
    }
    if spec.since is not None:
        extension["since"] = spec.since.isoformat()
    body: dict[str, Any] = {
        "model": spec.base_model,
        "hyperparameters": {"batch_size": hp.batch_size},
        "seed": hp.seed,
        "mindfu": extension,
    }
    for name in ("training_file", "validation_file", "suffix"):
        value = getattr(spec, name)
        if value is not None:
            body[name] = value
    return body
