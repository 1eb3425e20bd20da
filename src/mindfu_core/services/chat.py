"""The chat use case: pick the engine for the requested model, validate, generate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from mindfu_core.domain.chat import ChatDelta, ChatResult, GenerationRequest, ModelInfo
from mindfu_core.errors import InvalidRequest, NotFound
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.services.validation import validate_request


class ChatService:
    """Serves chat and text completions over one or more engines, each answering for one model id.

    Retrieval-augmented generation plugs in at ``_prepare``: the request that reaches the engine is the
    prepared one, so grounding the messages in retrieved context changes nothing else here.
    """

    def __init__(self, engines: Iterable[LLMEngine], *, max_n: int = 8) -> None:
        self._engines: dict[str, LLMEngine] = {}
        for engine in engines:
            model_id = engine.model_info().id
            if model_id in self._engines:
                raise InvalidRequest(f"two engines serve the same model id {model_id!r}")
            self._engines[model_id] = engine
        self._max_n = max_n

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

    def _prepare(self, request: GenerationRequest) -> tuple[LLMEngine, GenerationRequest]:
        engine = self.engine_for(request.model)
        validate_request(request, max_n=self._max_n)
        return engine, request

    async def complete(self, request: GenerationRequest) -> ChatResult:
        """Generate every choice of ``request`` and return them together."""
        engine, prepared = self._prepare(request)
        return await engine.complete(prepared)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        """Validate ``request`` now, then return its deltas as they are generated.

        Validation and model lookup happen before the first delta is awaited, so an edge can still
        answer with a plain error status instead of a broken stream.
        """
        engine, prepared = self._prepare(request)
        return engine.stream(prepared)
