"""The LLMEngine port: what the core needs from anything that generates text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    EngineStats,
    GenerationRequest,
    Message,
    ModelInfo,
    ToolSpec,
)


@runtime_checkable
class LLMEngine(Protocol):
    """A loaded model that completes chats and raw text.

    Implementations must not block the event loop, must stop generating promptly when the consumer of
    ``stream`` stops iterating (or the awaiting task of ``complete`` is cancelled), and raise only
    ``mindfu_core.errors`` exceptions (``Overloaded`` when their wait queue is full,
    ``ContextLengthExceeded`` when the prompt does not fit).
    """

    def model_info(self) -> ModelInfo:
        """Describe the served model."""
        ...

    def stats(self) -> EngineStats:
        """Current load and lifetime counters."""
        ...

    async def count_tokens(self, messages: Sequence[Message] | str, tools: Sequence[ToolSpec] = ()) -> int:
        """Tokens the prompt for these messages (rendered with the chat template, offering ``tools`` as a
        request with ``tool_choice`` auto would) or this text uses."""
        ...

    async def complete(self, request: GenerationRequest) -> ChatResult:
        """Generate every choice of ``request`` and return them whole."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        """Generate ``request`` as deltas (see ``ChatDelta`` for where finish reasons and usage arrive).

        Checks that can refuse the request (its size against the window, a full queue: ``Overloaded``) run
        before the first delta. Once the request is accepted, the stream may yield an empty delta at once,
        before the request waits for a slot or its prompt is computed, so that an edge can start its
        response; ``usage.cached_tokens`` says how much of the prompt was reused rather than computed.
        """
        ...

    async def aclose(self) -> None:
        """Release the model and its threads."""
        ...


# --- what some engines can do beyond the port (checked with isinstance, never probed by name) -------------


@runtime_checkable
class StartsOnLoop(Protocol):
    """An engine that finishes starting on the event loop after it is built (vLLM loads adapters there)."""

    async def start(self) -> None: ...


@runtime_checkable
class ServesAdapters(Protocol):
    """An engine that serves LoRA adapters of its model on its own slots, each under a model id of its own."""

    @property
    def adapter_format(self) -> Literal["gguf", "peft"]:
        """What an adapter must be to load: a LoRA GGUF (llama.cpp) or a PEFT folder (vLLM)."""
        ...

    def adapter_engines(self) -> list[LLMEngine]:
        """One engine per adapter configured at start-up."""
        ...

    async def add_adapter(self, name: str, path: Path) -> LLMEngine:
        """Serve one more adapter while running; ``ConfigurationError`` when it does not fit the model."""
        ...
