"""The chat use case: pick the engine for the requested model, validate, generate."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    ChatStream,
    GenerationRequest,
    ModelInfo,
    ToolChoiceMode,
)
from mindfu_core.domain.closing import aclose
from mindfu_core.domain.conversations import (
    NO_CONTEXT,
    CallContext,
)
from mindfu_core.domain.limits import DEFAULT_LIMITS, RequestLimits
from mindfu_core.domain.retrieval import Source
from mindfu_core.domain.text import check_text
from mindfu_core.errors import InvalidRequest, NotFound
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.services.chat_run import Run, logged
from mindfu_core.services.conversations import ConversationRecorder
from mindfu_core.services.prompt_layout import stable_messages
from mindfu_core.services.quotas import KeyQuotas, Lease
from mindfu_core.services.retrieval import Retriever
from mindfu_core.services.validation import check_size, validate_request


class ChatService:
    """Serves chat and text completions over one or more engines, each answering for one model id.

    With a ``Retriever``, every chat request is grounded first (unless its options disable it): the
    engine sees the augmented messages, and the result carries the sources used.
    """

    def __init__(
        self,
        engines: Iterable[LLMEngine],
        *,
        limits: RequestLimits = DEFAULT_LIMITS,
        quotas: KeyQuotas | None = None,
        retriever: Retriever | None = None,
        recorder: ConversationRecorder | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._engines: dict[str, LLMEngine] = {}
        for engine in engines:
            model_id = engine.model_info().id
            if model_id in self._engines:
                raise InvalidRequest(f"two engines serve the same model id {model_id!r}")
            self._engines[model_id] = engine
        self._aliases: dict[str, str] = {}
        for alias, model_id in (aliases or {}).items():
            if alias in self._engines or model_id not in self._engines:
                raise InvalidRequest(
                    f"the alias {alias!r} names a served model itself, or {model_id!r} is not served"
                )
            self._aliases[alias] = model_id
        self._limits = limits
        self._quotas = quotas or KeyQuotas()
        self._retriever = retriever
        self._recorder = recorder
        # model id -> the tenant it was fine-tuned for: only that tenant's callers see and use it
        self._owners: dict[str, str] = {}

    def models(self, tenant: str | None = None) -> list[ModelInfo]:
        """Every served model ``tenant`` may use (None: every one), and each alias as a model of its own
        (clients pick names from the list)."""
        served = [
            engine.model_info()
            for model_id, engine in self._engines.items()
            if self._visible(model_id, tenant)
        ]
        infos = {info.id: info for info in served}
        aliases = [(alias, target) for alias, target in self._aliases.items() if target in infos]
        return served + [replace(infos[target], id=alias) for alias, target in aliases]

    def model(self, model_id: str, tenant: str | None = None) -> ModelInfo:
        """One served model (or alias); ``NotFound`` if no engine serves ``model_id`` to ``tenant``."""
        return replace(self.engine_for(model_id, tenant).model_info(), id=model_id)

    def add_engine(self, engine: LLMEngine, *, tenant: str | None = None) -> None:
        """Serve one more model (a fine-tuned one, once its job finishes: to ``tenant``'s callers only, when
        given); its id must be new."""
        model_id = engine.model_info().id
        if model_id in self._engines or model_id in self._aliases:
            raise InvalidRequest(f"the model id {model_id!r} is already served")
        self._engines[model_id] = engine
        if tenant is not None:
            self._owners[model_id] = tenant

    async def list_models(self, *, tenant: str | None = None) -> list[ModelInfo]:
        """The models ``tenant`` may use (the application interface: a remote core answers over the
        network)."""
        return self.models(tenant)

    async def get_model(self, model_id: str, *, tenant: str | None = None) -> ModelInfo:
        """One served model; ``NotFound`` if no engine serves ``model_id`` to ``tenant``."""
        return self.model(model_id, tenant)

    def _visible(self, model_id: str, tenant: str | None) -> bool:
        owner = self._owners.get(model_id)
        return tenant is None or owner is None or owner == tenant

    def engine_for(self, model_id: str, tenant: str | None = None) -> LLMEngine:
        """The engine serving ``model_id`` (a served id or an alias) to ``tenant`` (None: to anyone)."""
        served = self._aliases.get(model_id, model_id)
        if served not in self._engines or not self._visible(served, tenant):
            raise NotFound(f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        return self._engines[served]

    async def count_tokens(self, request: ChatRequest) -> int:
        """Prompt tokens ``request`` would use: its messages in the model's chat template, with its tools
        (retrieved context is not counted: it depends on the query and is reported in each usage)."""
        engine = self.engine_for(request.model)
        check_size(request, self._limits)
        tools = request.tools if request.tool_choice.mode is not ToolChoiceMode.NONE else ()
        return await engine.count_tokens(stable_messages(request.messages), tools)

    def engines(self) -> list[LLMEngine]:
        """Every engine, for health checks and shutdown."""
        return list(self._engines.values())

    def _bounded(self, request: GenerationRequest) -> GenerationRequest:
        """``request`` with its answer no longer than the limits allow (their default when it names none)."""
        most, asked = self._limits.max_tokens, request.sampling.max_tokens
        if most is None or (asked is not None and asked <= most):
            return request
        return replace(request, sampling=replace(request.sampling, max_tokens=most))

    async def _prepare(
        self, request: GenerationRequest, tenant: str
    ) -> tuple[LLMEngine, GenerationRequest, tuple[Source, ...]]:
        engine = self.engine_for(request.model, tenant)
        if request.model in self._aliases:
            request = replace(request, model=self._aliases[request.model])
        validate_request(request, self._limits)
        request = self._bounded(request)
        if not isinstance(request, ChatRequest):
            return engine, request, ()
        request = replace(request, messages=stable_messages(request.messages))
        if self._retriever is None:
            return engine, request, ()
        grounded, sources = await self._retriever.ground(request, tenant=tenant)
        return engine, grounded, sources

    async def complete(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatResult:
        """Generate every choice of ``request`` and return them together (logged when it is a chat)."""
        request, context = await self._continued(request, context)
        lease = self._quotas.admit(context.api_key_id)
        spent = 0
        try:
            result = await self._complete(request, context)
            spent = result.usage.prompt_tokens + result.usage.completion_tokens
            return result
        finally:
            lease.release(spent)

    async def _complete(self, request: GenerationRequest, context: CallContext) -> ChatResult:
        completion_id = _completion_id(request)
        engine, prepared, sources = await self._prepare(request, context.tenant)
        run = await self._start_run(request, context, completion_id, sources)
        try:
            result = await engine.complete(prepared)
        except BaseException as error:
            if run is not None:
                run.fail(error)
            raise
        result = replace(result, id=completion_id, conversation_id=run.conversation_id if run else None)
        if sources:
            result = replace(result, sources=sources)
        if run is not None:
            for choice in result.choices:
                run.choice(choice.index).add_message(choice.message, choice.finish_reason)
            run.usage = result.usage
            await run.finish()
        return result

    async def stream(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatStream:
        """Validate ``request`` now, then return its deltas as they are generated.

        Validation and model lookup happen before the first delta is awaited, so an edge can still
        answer with a plain error status instead of a broken stream. A logged stream is kept durably after
        its last delta and before it ends.
        """
        request, context = await self._continued(request, context)
        lease = self._quotas.admit(context.api_key_id)
        try:
            completion_id = _completion_id(request)
            engine, prepared, sources = await self._prepare(request, context.tenant)
            run = await self._start_run(request, context, completion_id, sources)
        except BaseException:
            lease.release()
            raise
        deltas = _leased(engine.stream(prepared), lease)
        if sources:
            deltas = _with_sources(deltas, sources)
        if run is not None:
            deltas = logged(deltas, run)
        return ChatStream(deltas, id=completion_id, conversation_id=run.conversation_id if run else None)

    async def _continued(
        self, request: GenerationRequest, context: CallContext
    ) -> tuple[GenerationRequest, CallContext]:
        """``request`` after the logged completion the context continues (its transcript first), in that
        completion's conversation."""
        check_text(context.user or "", "user")
        previous = context.previous_completion_id
        if previous is None:
            return request, context
        if not isinstance(request, ChatRequest):
            raise InvalidRequest("only chat requests can continue a previous response")
        if self._recorder is None:
            raise InvalidRequest(
                "this server does not log conversations, so it cannot continue a previous response",
                param="previous_response_id",
            )
        conversation_id, history = await self._recorder.continuation(previous, tenant=context.tenant)
        if context.conversation_id and context.conversation_id != conversation_id:
            raise InvalidRequest(
                "the previous response belongs to another conversation than the one named",
                param="previous_response_id",
            )
        continued = replace(request, messages=history + request.messages)
        return continued, replace(context, conversation_id=conversation_id)

    async def _start_run(
        self,
        request: GenerationRequest,
        context: CallContext,
        completion_id: str,
        sources: tuple[Source, ...],
    ) -> Run | None:
        if self._recorder is None or not context.log or not isinstance(request, ChatRequest):
            return None
        conversation_id = await self._recorder.conversation_for(
            request.messages, context.conversation_id, tenant=context.tenant
        )
        return Run(
            recorder=self._recorder,
            request=request,
            context=context,
            id=completion_id,
            conversation_id=conversation_id,
            sources=sources,
        )


def _completion_id(request: GenerationRequest) -> str:
    prefix = "chatcmpl" if isinstance(request, ChatRequest) else "cmpl"
    return f"{prefix}-{uuid.uuid4().hex}"


async def _leased(deltas: AsyncIterator[ChatDelta], lease: Lease) -> AsyncIterator[ChatDelta]:
    """``deltas``; the key's lease ends with them, charged the tokens the last usage reported."""
    spent = 0
    try:
        async for delta in deltas:
            if delta.usage is not None:
                spent = delta.usage.prompt_tokens + delta.usage.completion_tokens
            yield delta
    finally:
        lease.release(spent)
        await aclose(deltas)


async def _with_sources(
    deltas: AsyncIterator[ChatDelta], sources: tuple[Source, ...]
) -> AsyncIterator[ChatDelta]:
    """The engine's deltas, then one carrying the sources (the last thing before the stream ends)."""
    try:
        async for delta in deltas:
            yield delta
    finally:
        await aclose(deltas)
    yield ChatDelta(sources=sources)
