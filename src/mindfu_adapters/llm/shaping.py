"""Turns an engine's raw text of one choice into deltas: plain content, or tool calls.

A forced call is grammar-constrained to ``<tool_call>{"name": "...", "arguments": {...}}</tool_call>``, so
it is streamed as it is generated: the call's name as soon as it is written, then its arguments in the
pieces the model produces. A call the model chooses to make on its own (``auto``) is parsed whole at the
end, because until then it may still turn out to be an ordinary answer, or not parse.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence

from mindfu_adapters.llm.tool_format import CALL_OPEN, could_become_call, new_call_id, parse_tool_calls
from mindfu_core.domain.chat import ChatDelta, FinishReason, TokenLogprob, ToolCallDelta, ToolSpec

#: What a forced call starts with, up to the first character of its arguments (the grammar writes
#: ``name`` before ``arguments``; whitespace between tokens is the grammar's optional space).
CALL_HEAD = re.compile(
    r"\s*" + re.escape(CALL_OPEN) + r'\s*\{\s*"name"\s*:\s*"(?P<name>[^"\\]*)"\s*,\s*"arguments"\s*:\s*'
)


class ToolMode(enum.Enum):
    """How a choice's output is read."""

    PLAIN = "plain"  # no tools offered: everything is content
    AUTO = "auto"  # the model may answer or call; held back only while it may still be a call
    FORCED = "forced"  # the output is a call (grammar-constrained): streamed as it is generated


class _ArgumentsScanner:
    """Finds where a JSON value ends in text that arrives in pieces (strings and escapes respected)."""

    def __init__(self) -> None:
        self.depth = 0
        self.started = False
        self.done = False
        self._in_string = False
        self._escaped = False

    def take(self, text: str) -> str:
        """The part of ``text`` that still belongs to the value (whitespace before it dropped)."""
        if not self.started:
            text = text.lstrip()
        for position, char in enumerate(text):
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
            if not char.isspace():
                self.started = True
            if self.started and self.depth == 0 and not self._in_string and char in "}]":
                self.done = True
                return text[: position + 1]
        return text


class _ForcedCall:
    """Streams one grammar-forced call: its head (id and name), then its arguments."""

    def __init__(self, index: int) -> None:
        self._index = index
        self._head = ""
        self._named = False
        self._arguments = _ArgumentsScanner()

    @property
    def named(self) -> bool:
        return self._named

    @property
    def complete(self) -> bool:
        return self._arguments.done

    def feed(self, text: str) -> ChatDelta | None:
        if self._arguments.done:
            return None  # the closing brace and tag: nothing for the client
        if not self._named:
            self._head += text
            match = CALL_HEAD.match(self._head)
            if match is None:
                return None
            self._named = True
            rest = self._arguments.take(self._head[match.end() :])
            piece = ToolCallDelta(index=0, id=new_call_id(), name=match["name"], arguments=rest)
            return ChatDelta(index=self._index, tool_call_deltas=(piece,))
        taken = self._arguments.take(text)
        if not taken:
            return None
        return ChatDelta(index=self._index, tool_call_deltas=(ToolCallDelta(index=0, arguments=taken),))

    @property
    def head(self) -> str:
        return self._head


class ChoiceShaper:
    """Feeds raw text fragments of one choice; yields the deltas a client should see."""

    def __init__(self, index: int, mode: ToolMode, tools: Sequence[ToolSpec]) -> None:
        self._index = index
        self._mode = mode
        self._tools = tools
        self._held: list[str] = []
        self._held_logprobs: list[TokenLogprob] = []
        self._holding = mode is ToolMode.AUTO
        self._forced = _ForcedCall(index) if mode is ToolMode.FORCED else None

    def feed(self, text: str, logprobs: Sequence[TokenLogprob] = ()) -> ChatDelta | None:
        if self._forced is not None:
            return self._forced.feed(text)
        if not self._holding:
            if not text and not logprobs:
                return None
            return ChatDelta(index=self._index, content=text, logprobs=tuple(logprobs))
        self._held.append(text)
        self._held_logprobs.extend(logprobs)
        if not could_become_call("".join(self._held)):
            self._holding = False
            return self._flush()
        return None

    def finish(self, reason: FinishReason, stop_sequence: str | None = None) -> list[ChatDelta]:
        """The choice's last deltas; ``stop_sequence`` is the one that ended it, where the engine knows."""
        if self._forced is not None:
            if self._forced.named:
                # a call cut short by max_tokens ends with length, as OpenAI's do
                final = FinishReason.TOOL_CALLS if self._forced.complete else reason
                return [ChatDelta(index=self._index, finish_reason=final)]
            if reason is FinishReason.LENGTH:
                return [ChatDelta(index=self._index, finish_reason=reason)]  # cut before the name
            self._held.append(self._forced.head)  # a call written unlike the head we expect: parse it
            self._holding = True
        deltas: list[ChatDelta] = []
        if self._holding and self._held:
            calls = parse_tool_calls("".join(self._held), self._tools)
            if calls:
                return [ChatDelta(index=self._index, tool_calls=calls, finish_reason=FinishReason.TOOL_CALLS)]
            flushed = self._flush()
            if flushed is not None:
                deltas.append(flushed)
        deltas.append(ChatDelta(index=self._index, finish_reason=reason, stop_sequence=stop_sequence))
        return deltas

    def _flush(self) -> ChatDelta | None:
        text, logprobs = "".join(self._held), tuple(self._held_logprobs)
        self._held.clear()
        self._held_logprobs.clear()
        if not text and not logprobs:
            return None
        return ChatDelta(index=self._index, content=text, logprobs=logprobs)
