"""Fold a stream of deltas into a finished result; shared by engines and the chat service."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    Choice,
    FinishReason,
    Message,
    Role,
    TokenLogprob,
    ToolCallAssembler,
    Usage,
)


@dataclass(slots=True)
class _ChoiceAcc:
    parts: list[str] = field(default_factory=list)
    tool_calls: ToolCallAssembler = field(default_factory=ToolCallAssembler)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    stop_sequence: str | None = None


async def collect(model: str, deltas: AsyncIterable[ChatDelta], *, with_logprobs: bool = False) -> ChatResult:
    """Consume ``deltas`` and return the completion they spell out."""
    choices: dict[int, _ChoiceAcc] = {}
    usage = Usage()
    async for delta in deltas:
        acc = choices.setdefault(delta.index, _ChoiceAcc())
        if delta.content:
            acc.parts.append(delta.content)
        acc.tool_calls.add(delta)
        acc.logprobs.extend(delta.logprobs)
        if delta.finish_reason is not None:
            acc.finish_reason = delta.finish_reason
            acc.stop_sequence = delta.stop_sequence
        if delta.usage is not None:
            usage = delta.usage
    return ChatResult(
        model=model,
        choices=tuple(
            Choice(
                index=index,
                message=Message(
                    role=Role.ASSISTANT,
                    content="".join(acc.parts) if acc.parts or not acc.tool_calls else None,
                    tool_calls=acc.tool_calls.calls(),
                ),
                finish_reason=acc.finish_reason or FinishReason.STOP,
                logprobs=tuple(acc.logprobs) if with_logprobs else None,
                stop_sequence=acc.stop_sequence,
            )
            for index, acc in sorted(choices.items())
        ),
        usage=usage,
    )
