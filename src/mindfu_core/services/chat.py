"""The chat use case: pick the engine for the requested model, validate, generate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import replace

from mindfu_core.domain.chat import ChatDelta, ChatRequest, ChatResult, GenerationRequest, ModelInfo
from mindfu_core.domain.retrieval import Source
from mindfu_core.errors import InvalidRequest, NotFound
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.services.retrieval import Retriever
from mindfu_core.services.validation import validate_request


class ChatService:
    """Serves chat and text completions over one or more engines, each answering for one model id.

    With a ``Retriever``, every chat request is grounded first (unless its options disable it): the
    engine sees the augmented messages, and the result carries the sources used.
    """

    def __init__(
        self, engines: Iterable[LLMEngine], *, max_n: int = 8, retriever: Retriever | None = None
    ) -> None:
        self._engines: dict[str, LLMEngine] = {}
        for engine in engines:
            model_id = engine.model_info().id
            if model_id in self._engines:
                raise InvalidRequest(f"two engines serve the same model id {model_id!r}")
            self._engines[model_id] = engine
        self._max_n = max_n
        self._retriever = retriever

    def models(self) -> list[ModelInfo]:
        """Every served model."""
        return [engine.model_info() for engine in self._engines.values()]

    def model(self, model_id: str) -> ModelInfo:
        """One served model; ``NotFound`` if no engine serves ``model_id``."""
        return self.engine_for(model_id).model_info()

    def engine_for(self, model_id: str) -> LLMEngine:
        """The engine serving ``model_id``."""
        try:
            return self._engines[model_id]
        except KeyError:
            raise NotFound(
                f"The model '{model_id}' does not exist", param="model", code="model_not_found"
            ) from None

    def engines(self) -> list[LLMEngine]:
        """Every engine, for health checks and shutdown."""
        return list(self._engines.values())

    async def _prepare(
        self, request: GenerationRequest
    ) -> tuple[LLMEngine, GenerationRequest, tuple[Source, ...]]:
        engine = self.engine_for(request.model)
        validate_request(request, max_n=self._max_n)
        if self._retriever is None or not isinstance(request, ChatRequest):
            return engine, request, ()
        grounded, sources = await self._retriever.ground(request)
        return engine, grounded, sources

    async def complete(self, request: GenerationRequest) -> ChatResult:
        """Generate every choice of ``request`` and return them together."""
        engine, prepared, sources = await self._prepare(request)
        result = await engine.complete(prepared)
        return replace(result, sources=sources) if sources else result

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        """Validate ``request`` now, then return its deltas as they are generated.

        Validation and model lookup happen before the first delta is awaited, so an edge can still
        answer with a plain error status instead of a broken stream.
        """
        engine, prepared, sources = await self._prepare(request)
        deltas = engine.stream(prepared)
        return _with_sources(deltas, sources) if sources else deltas


async def _with_sources(
    deltas: AsyncIterator[ChatDelta], sources: tuple[Source, ...]
) -> AsyncIterator[ChatDelta]:
    """The engine's deltas, then one carrying the sources (the last thing before the stream ends)."""
    try:
        async for delta in deltas:
            yield delta
    finally:
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:
            await aclose()
    yield ChatDelta(sources=sources)
