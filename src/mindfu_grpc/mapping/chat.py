"""Chat messages: requests, results, streamed deltas, models, and retrieval options and sources."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from mindfu_core.domain.chat import (
    ChatRequest,
    Message,
    ResponseFormat,
    ResponseFormatType,
    Role,
    SamplingParams,
    TextRequest,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from mindfu_core.domain.retrieval import RetrievalOptions, RetrievalOverrides
from mindfu_core.errors import InvalidRequest
from mindfu_grpc._pb.mindfu.v1 import chat_pb2 as pb
from mindfu_grpc.mapping.common import json_object, optional
from mindfu_grpc.mapping.retrieval import retrieval_overrides, retrieval_to_pb

_ROLES = {
    pb.ROLE_SYSTEM: Role.SYSTEM,
    pb.ROLE_USER: Role.USER,
    pb.ROLE_ASSISTANT: Role.ASSISTANT,
    pb.ROLE_TOOL: Role.TOOL,
}
_ROLE_VALUES = {role: value for value, role in _ROLES.items()}
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
