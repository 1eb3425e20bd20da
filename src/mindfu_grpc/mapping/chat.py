"""Chat messages: requests, results, streamed deltas, models, and retrieval options and sources."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    FinishReason,
    Message,
    ModelInfo,
    ResponseFormat,
    ResponseFormatType,
    Role,
    SamplingParams,
    TextRequest,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
    TopLogprob,
    Usage,
)
from mindfu_core.domain.documents import Filter
from mindfu_core.domain.retrieval import UNSET, RetrievalOptions, RetrievalOverrides, Source
from mindfu_core.errors import InvalidRequest
from mindfu_grpc._pb.mindfu.v1 import chat_pb2 as pb
from mindfu_grpc._pb.mindfu.v1 import models_pb2, retrieval_pb2
from mindfu_grpc.mapping.common import json_object, optional

_ROLES = {
    pb.ROLE_SYSTEM: Role.SYSTEM,
    pb.ROLE_USER: Role.USER,
    pb.ROLE_ASSISTANT: Role.ASSISTANT,
    pb.ROLE_TOOL: Role.TOOL,
}
_ROLE_VALUES = {role: value for value, role in _ROLES.items()}
_FINISH: dict[int, FinishReason] = {
    pb.FINISH_REASON_STOP: FinishReason.STOP,
    pb.FINISH_REASON_LENGTH: FinishReason.LENGTH,
    pb.FINISH_REASON_TOOL_CALLS: FinishReason.TOOL_CALLS,
    pb.FINISH_REASON_CONTENT_FILTER: FinishReason.CONTENT_FILTER,
}
_FINISH_VALUES = {reason: value for value, reason in _FINISH.items()}
_TOOL_CHOICE = {
    pb.TOOL_CHOICE_MODE_UNSPECIFIED: ToolChoiceMode.AUTO,
    pb.TOOL_CHOICE_MODE_NONE: ToolChoiceMode.NONE,
    pb.TOOL_CHOICE_MODE_AUTO: ToolChoiceMode.AUTO,
    pb.TOOL_CHOICE_MODE_REQUIRED: ToolChoiceMode.REQUIRED,
    pb.TOOL_CHOICE_MODE_FUNCTION: ToolChoiceMode.FUNCTION,
}
_TOOL_CHOICE_VALUES = {mode: value for value, mode in _TOOL_CHOICE.items() if value}
_FORMAT = {
    pb.RESPONSE_FORMAT_TYPE_UNSPECIFIED: ResponseFormatType.TEXT,
    pb.RESPONSE_FORMAT_TYPE_TEXT: ResponseFormatType.TEXT,
    pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT: ResponseFormatType.JSON_OBJECT,
    pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA: ResponseFormatType.JSON_SCHEMA,
}
_FORMAT_VALUES = {kind: value for value, kind in _FORMAT.items() if value}


# --- messages --------------------------------------------------------------------------------------------


def message_from_pb(message: pb.ChatMessage, param: str = "messages[0]") -> Message:
    role = _ROLES.get(message.role)
    if role is None:
        raise InvalidRequest(f"{param}.role must be set to a known role", param=f"{param}.role")
    return Message(
        role=role,
        content=optional(message, "content"),
        tool_calls=tuple(tool_call_from_pb(call) for call in message.tool_calls),
        tool_call_id=optional(message, "tool_call_id"),
        name=optional(message, "name"),
    )


def messages_from_pb(messages: Sequence[pb.ChatMessage]) -> tuple[Message, ...]:
    return tuple(message_from_pb(m, f"messages[{i}]") for i, m in enumerate(messages))


def message_to_pb(message: Message) -> pb.ChatMessage:
    out = pb.ChatMessage(
        role=_ROLE_VALUES[message.role], tool_calls=[tool_call_to_pb(c) for c in message.tool_calls]
    )
    if message.content is not None:
        out.content = message.content
    if message.tool_call_id is not None:
        out.tool_call_id = message.tool_call_id
    if message.name is not None:
        out.name = message.name
    return out


def tool_call_from_pb(call: pb.ToolCall) -> ToolCall:
    return ToolCall(id=call.id, name=call.name, arguments=call.arguments)


def tool_call_to_pb(call: ToolCall) -> pb.ToolCall:
    return pb.ToolCall(id=call.id, name=call.name, arguments=call.arguments)


def tool_call_delta_to_pb(piece: ToolCallDelta) -> pb.ToolCallDelta:
    out = pb.ToolCallDelta(index=piece.index, arguments=piece.arguments)
    if piece.id is not None:
        out.id = piece.id
    if piece.name is not None:
        out.name = piece.name
    return out


def tool_call_delta_from_pb(piece: pb.ToolCallDelta) -> ToolCallDelta:
    return ToolCallDelta(
        index=piece.index, id=optional(piece, "id"), name=optional(piece, "name"), arguments=piece.arguments
    )


# --- requests --------------------------------------------------------------------------------------------


def sampling_from_pb(params: pb.SamplingParams) -> SamplingParams:
    defaults = SamplingParams()
    temperature = optional(params, "temperature")
    top_p = optional(params, "top_p")
    presence = optional(params, "presence_penalty")
    frequency = optional(params, "frequency_penalty")
    return SamplingParams(
        max_tokens=optional(params, "max_tokens"),
        temperature=temperature,
        top_p=top_p,
        stop=tuple(params.stop),
        seed=optional(params, "seed"),
        presence_penalty=defaults.presence_penalty if presence is None else presence,
        frequency_penalty=defaults.frequency_penalty if frequency is None else frequency,
        logprobs=params.logprobs,
        top_logprobs=params.top_logprobs,
        top_k=optional(params, "top_k"),
        min_p=optional(params, "min_p"),
        repeat_penalty=optional(params, "repeat_penalty"),
    )


def sampling_to_pb(params: SamplingParams) -> pb.SamplingParams:
    out = pb.SamplingParams(
        stop=list(params.stop),
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        logprobs=params.logprobs,
        top_logprobs=params.top_logprobs,
    )
    for name in ("max_tokens", "temperature", "top_p", "seed", "top_k", "min_p", "repeat_penalty"):
        value = getattr(params, name)
        if value is not None:
            setattr(out, name, value)
    return out


def _tool_from_pb(tool: pb.Tool, position: int) -> ToolSpec:
    param = f"tools[{position}].parameters_json"
    return ToolSpec(
        name=tool.name, description=tool.description, parameters=json_object(tool.parameters_json, param)
    )


def _tool_to_pb(tool: ToolSpec) -> pb.Tool:
    parameters = json.dumps(dict(tool.parameters)) if tool.parameters else ""
    return pb.Tool(name=tool.name, description=tool.description, parameters_json=parameters)


def _response_format_from_pb(fmt: pb.ResponseFormat) -> ResponseFormat:
    kind = _FORMAT.get(fmt.type)
    if kind is None:
        raise InvalidRequest("response_format.type is not a known type", param="response_format.type")
    schema = json_object(fmt.schema_json, "response_format.schema_json") if fmt.schema_json else None
    return ResponseFormat(type=kind, schema=schema, name=fmt.name or None)


def _response_format_to_pb(fmt: ResponseFormat) -> pb.ResponseFormat:
    return pb.ResponseFormat(
        type=_FORMAT_VALUES[fmt.type],
        schema_json=json.dumps(dict(fmt.schema)) if fmt.schema is not None else "",
        name=fmt.name or "",
    )


def retrieval_overrides(options: retrieval_pb2.RetrievalOptions) -> RetrievalOverrides:
    """The fields a request set (the server's defaults fill the rest)."""
    return RetrievalOverrides(
        enabled=options.enabled if options.HasField("enabled") else UNSET,
        top_k=options.top_k if options.HasField("top_k") else UNSET,
        min_score=options.min_score if options.HasField("min_score") else UNSET,
        collection=options.collection if options.HasField("collection") else UNSET,
        where=filter_from_pb(options.where) if options.HasField("where") else UNSET,
        hybrid=options.hybrid if options.HasField("hybrid") else UNSET,
    )


def retrieval_to_pb(options: RetrievalOptions) -> retrieval_pb2.RetrievalOptions:
    out = retrieval_pb2.RetrievalOptions(
        enabled=options.enabled, top_k=options.top_k, collection=options.collection, hybrid=options.hybrid
    )
    if options.min_score is not None:
        out.min_score = options.min_score
    if options.where is not None:
        out.where.CopyFrom(filter_to_pb(options.where))
    return out


def filter_from_pb(where: retrieval_pb2.MetadataFilter) -> Filter:
    metadata: dict[str, str | int | bool] = {}
    for key, value in where.metadata.items():
        kind = value.WhichOneof("kind")
        if kind is None:
            raise InvalidRequest(f"filter value {key!r} has no value", param=f"where.metadata.{key}")
        metadata[key] = getattr(value, kind)
    return Filter(document_ids=tuple(where.document_ids), metadata=metadata)


def filter_to_pb(where: Filter) -> retrieval_pb2.MetadataFilter:
    out = retrieval_pb2.MetadataFilter(document_ids=list(where.document_ids))
    for key, value in where.metadata.items():
        if isinstance(value, bool):
            out.metadata[key].bool_value = value
        elif isinstance(value, int):
            out.metadata[key].int_value = value
        else:
            out.metadata[key].string_value = str(value)
    return out


def chat_request_from_pb(
    model: str,
    messages: Sequence[pb.ChatMessage],
    options: pb.CompletionOptions,
    resolve_retrieval: Callable[[RetrievalOverrides], RetrievalOptions],
) -> ChatRequest:
    """A core request; ``resolve_retrieval(overrides)`` applies the server's retrieval defaults."""
    retrieval = None
    if options.HasField("retrieval"):
        retrieval = resolve_retrieval(retrieval_overrides(options.retrieval))
    mode = _TOOL_CHOICE.get(options.tool_choice.mode)
    if mode is None:
        raise InvalidRequest("tool_choice.mode is not a known mode", param="tool_choice.mode")
    return ChatRequest(
        model=model,
        messages=messages_from_pb(messages),
        sampling=sampling_from_pb(options.sampling),
        tools=tuple(_tool_from_pb(tool, i) for i, tool in enumerate(options.tools)),
        tool_choice=ToolChoice(mode=mode, name=options.tool_choice.name or None),
        response_format=_response_format_from_pb(options.response_format),
        n=options.n or 1,
        retrieval=retrieval,
    )


def completion_options_to_pb(
    request: ChatRequest,
    *,
    conversation_id: str | None = None,
    user: str | None = None,
    previous_completion_id: str | None = None,
    store: bool = True,
) -> pb.CompletionOptions:
    out = pb.CompletionOptions(
        sampling=sampling_to_pb(request.sampling),
        tools=[_tool_to_pb(tool) for tool in request.tools],
        tool_choice=pb.ToolChoice(
            mode=_TOOL_CHOICE_VALUES[request.tool_choice.mode], name=request.tool_choice.name or ""
        ),
        response_format=_response_format_to_pb(request.response_format),
        n=request.n,
    )
    if request.retrieval is not None:
        out.retrieval.CopyFrom(retrieval_to_pb(request.retrieval))
    if conversation_id is not None:
        out.conversation_id = conversation_id
    if user is not None:
        out.user = user
    if previous_completion_id is not None:
        out.previous_completion_id = previous_completion_id
    if not store:
        out.store = False
    return out


def text_request_from_pb(model: str, prompt: str, options: pb.TextOptions) -> TextRequest:
    return TextRequest(
        model=model,
        prompt=prompt,
        sampling=sampling_from_pb(options.sampling),
        echo=options.echo,
        n=options.n or 1,
    )


def text_options_to_pb(request: TextRequest) -> pb.TextOptions:
    return pb.TextOptions(sampling=sampling_to_pb(request.sampling), echo=request.echo, n=request.n)


# --- results ---------------------------------------------------------------------------------------------


def usage_to_pb(usage: Usage) -> pb.Usage:
    return pb.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cached_tokens=usage.cached_tokens,
    )


def usage_from_pb(usage: pb.Usage) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
    )


def finish_to_pb(reason: FinishReason | None) -> pb.FinishReason.ValueType:
    return (
        pb.FINISH_REASON_UNSPECIFIED if reason is None else pb.FinishReason.ValueType(_FINISH_VALUES[reason])
    )


def finish_from_pb(value: int) -> FinishReason | None:
    return _FINISH.get(value)


def logprobs_to_pb(tokens: Sequence[TokenLogprob]) -> list[pb.TokenLogprob]:
    return [
        pb.TokenLogprob(
            token=t.token,
            logprob=t.logprob,
            top=[pb.TopLogprob(token=a.token, logprob=a.logprob) for a in t.top],
        )
        for t in tokens
    ]


def logprobs_from_pb(tokens: Sequence[pb.TokenLogprob]) -> tuple[TokenLogprob, ...]:
    return tuple(
        TokenLogprob(
            token=t.token,
            logprob=t.logprob,
            top=tuple(TopLogprob(token=a.token, logprob=a.logprob) for a in t.top),
        )
        for t in tokens
    )


def choice_to_pb(choice: Choice) -> pb.Choice:
    out = pb.Choice(
        index=choice.index,
        message=message_to_pb(choice.message),
        finish_reason=finish_to_pb(choice.finish_reason),
    )
    if choice.logprobs is not None:
        out.logprobs.CopyFrom(pb.Logprobs(content=logprobs_to_pb(choice.logprobs)))
    if choice.stop_sequence is not None:
        out.stop_sequence = choice.stop_sequence
    return out


def choice_from_pb(choice: pb.Choice) -> Choice:
    return Choice(
        index=choice.index,
        message=message_from_pb(choice.message, f"choices[{choice.index}].message"),
        finish_reason=finish_from_pb(choice.finish_reason) or FinishReason.STOP,
        logprobs=logprobs_from_pb(choice.logprobs.content) if choice.HasField("logprobs") else None,
        stop_sequence=optional(choice, "stop_sequence"),
    )


def source_to_pb(source: Source) -> retrieval_pb2.Source:
    out = retrieval_pb2.Source(
        number=source.number,
        document_id=source.document_id,
        name=source.name,
        chunk_index=source.chunk_index,
        score=source.score,
        excerpt=source.excerpt,
    )
    if source.page is not None:
        out.page = source.page
    return out


def source_from_pb(source: retrieval_pb2.Source) -> Source:
    return Source(
        number=source.number,
        document_id=source.document_id,
        name=source.name,
        page=optional(source, "page"),
        chunk_index=source.chunk_index,
        score=source.score,
        excerpt=source.excerpt,
    )


def result_to_pb(result: ChatResult, created: int) -> pb.CompleteResponse:
    out = pb.CompleteResponse(
        id=result.id,
        model=result.model,
        created=created,
        choices=[choice_to_pb(c) for c in result.choices],
        usage=usage_to_pb(result.usage),
        sources=[source_to_pb(s) for s in result.sources],
    )
    if result.conversation_id is not None:
        out.conversation_id = result.conversation_id
    return out


def result_from_pb(response: pb.CompleteResponse) -> ChatResult:
    return ChatResult(
        model=response.model,
        choices=tuple(choice_from_pb(c) for c in response.choices),
        usage=usage_from_pb(response.usage),
        sources=tuple(source_from_pb(s) for s in response.sources),
        id=response.id,
        conversation_id=optional(response, "conversation_id"),
    )


def text_result_to_pb(result: ChatResult, created: int) -> pb.CompleteTextResponse:
    choices = []
    for choice in result.choices:
        out = pb.TextChoice(
            index=choice.index,
            text=choice.message.content or "",
            finish_reason=finish_to_pb(choice.finish_reason),
        )
        if choice.logprobs is not None:
            out.logprobs.CopyFrom(pb.Logprobs(content=logprobs_to_pb(choice.logprobs)))
        if choice.stop_sequence is not None:
            out.stop_sequence = choice.stop_sequence
        choices.append(out)
    return pb.CompleteTextResponse(
        id=result.id, model=result.model, created=created, choices=choices, usage=usage_to_pb(result.usage)
    )


def text_result_from_pb(response: pb.CompleteTextResponse) -> ChatResult:
    return ChatResult(
        model=response.model,
        choices=tuple(
            Choice(
                index=c.index,
                message=Message(role=Role.ASSISTANT, content=c.text),
                finish_reason=finish_from_pb(c.finish_reason) or FinishReason.STOP,
                logprobs=logprobs_from_pb(c.logprobs.content) if c.HasField("logprobs") else None,
                stop_sequence=optional(c, "stop_sequence"),
            )
            for c in response.choices
        ),
        usage=usage_from_pb(response.usage),
        id=response.id,
    )


def delta_to_pb(
    delta: ChatDelta, *, completion_id: str, model: str, conversation_id: str | None
) -> pb.StreamCompleteResponse:
    out = pb.StreamCompleteResponse(
        id=completion_id,
        model=model,
        index=delta.index,
        content=delta.content,
        tool_calls=[tool_call_to_pb(c) for c in delta.tool_calls],
        tool_call_deltas=[tool_call_delta_to_pb(p) for p in delta.tool_call_deltas],
        logprobs=logprobs_to_pb(delta.logprobs),
        finish_reason=finish_to_pb(delta.finish_reason),
        sources=[source_to_pb(s) for s in delta.sources],
    )
    if delta.usage is not None:
        out.usage.CopyFrom(usage_to_pb(delta.usage))
    if delta.stop_sequence is not None:
        out.stop_sequence = delta.stop_sequence
    if conversation_id is not None:
        out.conversation_id = conversation_id
    return out


def delta_from_pb(piece: pb.StreamCompleteResponse) -> ChatDelta:
    return ChatDelta(
        index=piece.index,
        content=piece.content,
        tool_calls=tuple(tool_call_from_pb(c) for c in piece.tool_calls),
        tool_call_deltas=tuple(tool_call_delta_from_pb(p) for p in piece.tool_call_deltas),
        logprobs=logprobs_from_pb(piece.logprobs),
        finish_reason=finish_from_pb(piece.finish_reason),
        stop_sequence=optional(piece, "stop_sequence"),
        usage=usage_from_pb(piece.usage) if piece.HasField("usage") else None,
        sources=tuple(source_from_pb(s) for s in piece.sources),
    )


def text_delta_to_pb(delta: ChatDelta, *, completion_id: str, model: str) -> pb.StreamCompleteTextResponse:
    out = pb.StreamCompleteTextResponse(
        id=completion_id,
        model=model,
        index=delta.index,
        text=delta.content,
        logprobs=logprobs_to_pb(delta.logprobs),
        finish_reason=finish_to_pb(delta.finish_reason),
    )
    if delta.usage is not None:
        out.usage.CopyFrom(usage_to_pb(delta.usage))
    if delta.stop_sequence is not None:
        out.stop_sequence = delta.stop_sequence
    return out


def text_delta_from_pb(piece: pb.StreamCompleteTextResponse) -> ChatDelta:
    return ChatDelta(
        index=piece.index,
        content=piece.text,
        logprobs=logprobs_from_pb(piece.logprobs),
        finish_reason=finish_from_pb(piece.finish_reason),
        stop_sequence=optional(piece, "stop_sequence"),
        usage=usage_from_pb(piece.usage) if piece.HasField("usage") else None,
    )


# --- models ----------------------------------------------------------------------------------------------


def model_to_pb(info: ModelInfo) -> models_pb2.Model:
    return models_pb2.Model(
        id=info.id,
        context_length=info.context_length,
        owned_by=info.owned_by,
        created=info.created,
        engine=info.engine,
        source=info.source,
        supports_tools=info.supports_tools,
        supports_logprobs=info.supports_logprobs,
    )


def model_from_pb(model: models_pb2.Model) -> ModelInfo:
    return ModelInfo(
        id=model.id,
        context_length=model.context_length,
        owned_by=model.owned_by,
        created=model.created,
        engine=model.engine,
        source=model.source,
        supports_tools=model.supports_tools,
        supports_logprobs=model.supports_logprobs,
    )
