"""A LoRA adapter served under its own model name on the slots of its base engine (llama.cpp or vLLM)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    EngineStats,
    GenerationRequest,
    Message,
    ModelInfo,
    ToolSpec,
)
from mindfu_core.services.collect import collect


class AdapterHost(Protocol):
    """An engine that generates with one of its LoRA adapters by name."""

    def model_info(self) -> ModelInfo: ...

    def stats(self) -> EngineStats: ...

    async def count_tokens(
        self, messages: Sequence[Message] | str, tools: Sequence[ToolSpec] = ()
    ) -> int: ...

    def stream_with(self, request: GenerationRequest, adapter: str | None) -> AsyncIterator[ChatDelta]: ...


class LoraAdapterEngine:
    """``mindfu_core.LLMEngine`` for one adapter: requests run on the base engine's slots with the adapter
    applied (per request; a slot switching adapters drops its cached prompt prefix)."""

    def __init__(self, base: AdapterHost, name: str, path: Path) -> None:
        self._base = base
        self._name = name
        self._path = path

    def model_info(self) -> ModelInfo:
        return replace(self._base.model_info(), id=self._name, source=str(self._path))

    def stats(self) -> EngineStats:
        return self._base.stats()  # the same slots

    async def count_tokens(self, messages: Sequence[Message] | str, tools: Sequence[ToolSpec] = ()) -> int:
        return await self._base.count_tokens(messages, tools)

    async def complete(self, request: GenerationRequest) -> ChatResult:
        return await collect(request.model, self.stream(request), with_logprobs=request.sampling.logprobs)

    def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        return self._base.stream_with(request, self._name)

    async def aclose(self) -> None:
        """The base engine owns the adapter (and frees it with the model)."""
