"""An in-process engine that is loaded at its first request and unloaded after a while without one, so a
server can offer more models than its memory holds at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    EngineStats,
    GenerationRequest,
    Message,
    ModelInfo,
    ToolSpec,
)
from mindfu_core.domain.closing import aclose
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.services.collect import collect

log = logging.getLogger(__name__)


class LazyEngine:
    """``mindfu_core.LLMEngine`` over ``load()``: loads (in a thread) when a request needs the model, and
    closes it once ``idle_s`` seconds pass with no request in flight."""

    def __init__(
        self, load: Callable[[], LLMEngine], info: ModelInfo, *, idle_s: float, slots: int, max_queue: int
    ) -> None:
        self._load = load
        self._info = info
        self._idle_s = idle_s
        self._slots = slots
        self._max_queue = max_queue
        self._engine: LLMEngine | None = None
        self._lock = asyncio.Lock()
        self._active = 0
        self._last_used = time.monotonic()
        self._reaper: asyncio.Task[None] | None = None
        self.loads = 0

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def model_info(self) -> ModelInfo:
        return self._engine.model_info() if self._engine is not None else self._info

    def stats(self) -> EngineStats:
        if self._engine is not None:
            return self._engine.stats()
        return EngineStats(
            slots=self._slots,
            active=0,
            queued=0,
            max_queue=self._max_queue,
            requests_total=0,
            tokens_generated_total=0,
            ready=True,  # loadable on demand
        )

    async def _acquire(self) -> LLMEngine:
        self._active += 1
        try:
            async with self._lock:
                if self._engine is None:
                    log.info("loading model %s", self._info.id)
                    self._engine = await asyncio.to_thread(self._load)
                    self.loads += 1
                    if self._reaper is None or self._reaper.done():
                        self._reaper = asyncio.create_task(self._reap())
                return self._engine
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        self._active -= 1
        self._last_used = time.monotonic()

    async def _reap(self) -> None:
        """Unload the model once it has been idle long enough; ends when it did."""
        while True:
            idle_for = time.monotonic() - self._last_used
            await asyncio.sleep(max(self._idle_s - idle_for, self._idle_s / 10))
            if self._active or time.monotonic() - self._last_used < self._idle_s:
                continue
            async with self._lock:
                if self._active or self._engine is None:
                    continue
                engine, self._engine = self._engine, None
            log.info("unloading model %s after %.0f s idle", self._info.id, self._idle_s)
            await engine.aclose()
            return

    async def count_tokens(self, messages: Sequence[Message] | str, tools: Sequence[ToolSpec] = ()) -> int:
        engine = await self._acquire()
        try:
            return await engine.count_tokens(messages, tools)
        finally:
            self._release()

    async def complete(self, request: GenerationRequest) -> ChatResult:
        return await collect(request.model, self.stream(request), with_logprobs=request.sampling.logprobs)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        engine = await self._acquire()
        try:
            deltas = engine.stream(request)
            try:
                async for delta in deltas:
                    yield delta
            finally:
                await aclose(deltas)
        finally:
            self._release()

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        async with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            await engine.aclose()
