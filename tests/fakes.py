"""A scripted LLMEngine for tests: replies come from a script, token by token, with the port's semantics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from mindfu_adapters.llm.slots import SlotPool
from mindfu_core import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    ContextLengthExceeded,
    EngineStats,
    FinishReason,
    GenerationRequest,
    Message,
    ModelInfo,
    TextFit,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    collect,
)


@dataclass(frozen=True)
class Reply:
    """One scripted answer: text (split on spaces into tokens) or tool calls (whole, or with ``pieces``
    streamed as they would be generated: the name first, then the arguments a few characters at a time)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    pieces: bool = False


def _cut(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    """The text before the first stop sequence in it, and that stop sequence (as the real engines do)."""
    found = [(at, stop) for stop in stops if (at := text.find(stop)) >= 0]
    if not found:
        return text, None
    at, stop = min(found)
    return text[:at], stop


class ScriptedEngine:
    """Answers requests with the next scripted reply (the last one repeats); one token per word."""

    def __init__(
        self,
        replies: Sequence[Reply] = (Reply(text="Hello from the scripted engine."),),
        *,
        model_id: str = "scripted",
        context_length: int = 256,
        token_delay: float = 0.0,
        slots: int = 1,
        max_queue: int = 4,
    ) -> None:
        self._replies = list(replies)
        self._model_id = model_id
        self._context_length = context_length
        self._delay = token_delay
        self._pool: SlotPool[int] = SlotPool(list(range(slots)), max_queue=max_queue)
        self.requests: list[GenerationRequest] = []
        self.tokens_generated = 0
        self._served = 0

    def model_info(self) -> ModelInfo:
        return ModelInfo(id=self._model_id, context_length=self._context_length, engine="scripted")

    def stats(self) -> EngineStats:
        return EngineStats(
            slots=self._pool.size,
            active=self._pool.active,
            queued=self._pool.queued,
            max_queue=self._pool.max_queue,
            requests_total=len(self.requests),
            tokens_generated_total=self.tokens_generated,
            ready=True,
        )

    async def count_tokens(self, messages: Sequence[Message] | str, tools: Sequence[ToolSpec] = ()) -> int:
        if isinstance(messages, str):
            return len(messages.split())
        offered = sum(len(t.name.split()) + len(t.description.split()) + 4 for t in tools)
        return sum(len((m.content or "").split()) + 2 for m in messages) + offered

    def _next_reply(self) -> Reply:
        reply = self._replies[min(self._served, len(self._replies) - 1)]
        self._served += 1
        return reply

    async def complete(self, request: GenerationRequest) -> ChatResult:
        return await collect(request.model, self.stream(request))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        prompt = await self.count_tokens(
            request.messages if isinstance(request, ChatRequest) else request.prompt
        )
        max_tokens = request.sampling.max_tokens
        if prompt + (max_tokens or 0) > self._context_length:
            raise ContextLengthExceeded(f"needs {prompt} tokens, the context holds {self._context_length}")
        self._pool.admit()
        yield ChatDelta(index=0)  # accepted, as the real engines say before they wait for a slot
        slot = await self._pool.acquire()
        try:
            self.requests.append(request)
            produced = 0
            for index in range(request.n):
                reply = self._next_reply()
                if reply.tool_calls and reply.pieces:
                    for number, call in enumerate(reply.tool_calls):
                        yield ChatDelta(
                            index=index,
                            tool_call_deltas=(ToolCallDelta(index=number, id=call.id, name=call.name),),
                        )
                        for start in range(0, len(call.arguments), 4):
                            piece = ToolCallDelta(index=number, arguments=call.arguments[start : start + 4])
                            yield ChatDelta(index=index, tool_call_deltas=(piece,))
                    yield ChatDelta(index=index, finish_reason=FinishReason.TOOL_CALLS)
                    continue
                if reply.tool_calls:
                    yield ChatDelta(
                        index=index, tool_calls=reply.tool_calls, finish_reason=FinishReason.TOOL_CALLS
                    )
                    continue
                reason = FinishReason.STOP
                text, matched = _cut(reply.text, request.sampling.stop)
                for position, word in enumerate(text.split(" ")):
                    if max_tokens is not None and position >= max_tokens:
                        reason, matched = FinishReason.LENGTH, None
                        break
                    if self._delay:
                        await asyncio.sleep(self._delay)
                    self.tokens_generated += 1
                    produced += 1
                    yield ChatDelta(index=index, content=word if position == 0 else " " + word)
                yield ChatDelta(index=index, finish_reason=reason, stop_sequence=matched)
            yield ChatDelta(
                index=request.n - 1, usage=Usage(prompt_tokens=prompt, completion_tokens=produced)
            )
        finally:
            self._pool.release(slot)

    async def aclose(self) -> None:
        return None


class HashEmbedder:
    """A deterministic bag-of-words embedder: texts sharing words get similar vectors."""

    def __init__(self, dimension: int = 64, *, fail_after: int | None = None) -> None:
        self._dimension = dimension
        self.limit = 256  # words read of one text
        self.calls = 0
        self._fail_after = fail_after

    @property
    def model_id(self) -> str:
        return "hash-bow"

    @property
    def dimension(self) -> int:
        return self._dimension

    async def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(text.split()) for text in texts)

    async def measure(self, text: str) -> TextFit:
        return TextFit(tokens=len(text.split()), limit=self.limit)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import hashlib
        import math

        self.calls += 1
        if self._fail_after is not None and self.calls > self._fail_after:
            raise RuntimeError("embedder went away")
        vectors = []
        for text in texts:
            vector = [0.0] * self._dimension
            for word in text.lower().split():
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dimension] += 1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return vectors
