"""Turns an engine's raw text of one choice into deltas: plain content, or parsed tool calls."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from mindfu_adapters.llm.tool_format import could_become_call, parse_tool_calls
from mindfu_core.domain.chat import ChatDelta, FinishReason, TokenLogprob, ToolSpec


class ToolMode(enum.Enum):
    """How a choice's output is read."""

    PLAIN = "plain"  # no tools offered: everything is content
    AUTO = "auto"  # the model may answer or call; held back only while it may still be a call
    FORCED = "forced"  # the output is a call (grammar-constrained): parse it at the end


class ChoiceShaper:
    """Feeds raw text fragments of one choice; yields the deltas a client should see."""

    def __init__(self, index: int, mode: ToolMode, tools: Sequence[ToolSpec]) -> None:
        self._index = index
        self._mode = mode
        self._tools = tools
        self._held: list[str] = []
        self._held_logprobs: list[TokenLogprob] = []
        self._holding = mode is not ToolMode.PLAIN

    def feed(self, text: str, logprobs: Sequence[TokenLogprob] = ()) -> ChatDelta | None:
        if not self._holding:
            if not text and not logprobs:
                return None
            return ChatDelta(index=self._index, content=text, logprobs=tuple(logprobs))
        self._held.append(text)
        self._held_logprobs.extend(logprobs)
        if self._mode is ToolMode.AUTO and not could_become_call("".join(self._held)):
            self._holding = False
            return self._flush()
        return None

    def finish(self, reason: FinishReason) -> list[ChatDelta]:
        deltas: list[ChatDelta] = []
        if self._holding and self._held:
            calls = parse_tool_calls("".join(self._held), self._tools)
            if calls:
                return [ChatDelta(index=self._index, tool_calls=calls, finish_reason=FinishReason.TOOL_CALLS)]
            flushed = self._flush()
            if flushed is not None:
                deltas.append(flushed)
        deltas.append(ChatDelta(index=self._index, finish_reason=reason))
        return deltas

    def _flush(self) -> ChatDelta | None:
        text, logprobs = "".join(self._held), tuple(self._held_logprobs)
        self._held.clear()
        self._held_logprobs.clear()
        if not text and not logprobs:
            return None
        return ChatDelta(index=self._index, content=text, logprobs=logprobs)
