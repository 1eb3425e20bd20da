"""One logged chat completion while it runs: what each choice has generated so far, and when; kept
durably by the recorder when it ends, however it ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    FinishReason,
    Message,
    Role,
    ToolCallAssembler,
    Usage,
)
from mindfu_core.domain.closing import aclose
from mindfu_core.domain.conversations import CallContext, CompletionRecord, CompletionStatus, RetrievedChunk
from mindfu_core.domain.retrieval import Source
from mindfu_core.errors import MindFuError, Overloaded
from mindfu_core.services.conversations import ConversationRecorder, request_parameters


@dataclass(slots=True)
class Choice:
    content: list[str] = field(default_factory=list)
    tool_calls: ToolCallAssembler = field(default_factory=ToolCallAssembler)
    finish_reason: FinishReason | None = None

    def add_message(self, message: Message, finish_reason: FinishReason | None) -> None:
        if message.content:
            self.content.append(message.content)
        self.tool_calls.add(ChatDelta(tool_calls=message.tool_calls))
        self.finish_reason = finish_reason

    def message(self) -> Message:
        text = "".join(self.content)
        return Message(
            role=Role.ASSISTANT,
            content=text if text or not self.tool_calls else None,
            tool_calls=self.tool_calls.calls(),
        )


@dataclass(slots=True, kw_only=True)
class Run:
    """One logged completion while it runs: what has been generated so far, and when."""

    recorder: ConversationRecorder
    request: ChatRequest
    context: CallContext
    id: str
    conversation_id: str
    sources: tuple[Source, ...]
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    first_token: float | None = None
    usage: Usage = field(default_factory=Usage)
    choices: dict[int, Choice] = field(default_factory=dict)

    def choice(self, index: int) -> Choice:
        return self.choices.setdefault(index, Choice())

    def add_delta(self, delta: ChatDelta) -> None:
        output = delta.content or delta.tool_calls or delta.tool_call_deltas
        if output or delta.finish_reason:
            if self.first_token is None and output:
                self.first_token = time.perf_counter()
            choice = self.choice(delta.index)
            if delta.content:
                choice.content.append(delta.content)
            choice.tool_calls.add(delta)
            if delta.finish_reason is not None:
                choice.finish_reason = delta.finish_reason
        if delta.usage is not None:
            self.usage = delta.usage

    def build(self, status: CompletionStatus, error: str | None = None) -> CompletionRecord:
        ordered = [self.choices[i] for i in sorted(self.choices)]
        return CompletionRecord(
            id=self.id,
            conversation_id=self.conversation_id,
            created_at=self.created_at,
            model=self.request.model,
            messages=self.request.messages,
            responses=tuple(c.message() for c in ordered),
            finish_reasons=tuple(c.finish_reason for c in ordered),
            parameters=request_parameters(self.request),
            usage=self.usage,
            latency_ms=(time.perf_counter() - self.started) * 1000.0,
            ttft_ms=None if self.first_token is None else (self.first_token - self.started) * 1000.0,
            retrieved=tuple(
                RetrievedChunk(document_id=s.document_id, chunk_index=s.chunk_index, score=s.score)
                for s in self.sources
            ),
            status=status,
            error=error,
            api_key_id=self.context.api_key_id,
            tenant=self.context.tenant,
            user=self.context.user,
        )

    async def finish(self) -> None:
        await self.recorder.record(self.build(CompletionStatus.OK))

    def fail(self, error: BaseException) -> None:
        if isinstance(error, Overloaded) and not self.choices:
            return  # turned away before any work: counted by the engine, not a conversation
        if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
            record = self.build(CompletionStatus.CANCELLED)
        elif isinstance(error, MindFuError):
            record = self.build(CompletionStatus.ERROR, f"{type(error).__name__}: {error}")
        else:
            record = self.build(CompletionStatus.ERROR, f"{type(error).__name__} (internal error)")
        self.recorder.record_later(record)


async def logged(deltas: AsyncIterator[ChatDelta], run: Run) -> AsyncIterator[ChatDelta]:
    """``deltas``, recorded as they pass; the finished record is kept before the stream ends."""
    try:
        async for delta in deltas:
            run.add_delta(delta)
            yield delta
    except BaseException as error:
        run.fail(error)
        raise
    finally:
        await aclose(deltas)
    await run.finish()
