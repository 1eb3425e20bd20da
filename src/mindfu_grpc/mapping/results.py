"""gRPC <-> domain: what generation gives back (results, streamed deltas, choices, usage, log-probabilities)
and the served models."""

from __future__ import annotations

from collections.abc import Sequence

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    Choice,
    FinishReason,
    Message,
    ModelInfo,
    Role,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from mindfu_grpc._pb.mindfu.v1 import chat_pb2 as pb
from mindfu_grpc._pb.mindfu.v1 import models_pb2
from mindfu_grpc.mapping.chat import (
    message_from_pb,
    message_to_pb,
    tool_call_delta_from_pb,
    tool_call_delta_to_pb,
    tool_call_from_pb,
    tool_call_to_pb,
)
from mindfu_grpc.mapping.common import optional
from mindfu_grpc.mapping.retrieval import source_from_pb, source_to_pb

_FINISH: dict[int, FinishReason] = {
    pb.FINISH_REASON_STOP: FinishReason.STOP,
    pb.FINISH_REASON_LENGTH: FinishReason.LENGTH,
    pb.FINISH_REASON_TOOL_CALLS: FinishReason.TOOL_CALLS,
    pb.FINISH_REASON_CONTENT_FILTER: FinishReason.CONTENT_FILTER,
}
_FINISH_VALUES = {reason: value for value, reason in _FINISH.items()}


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
