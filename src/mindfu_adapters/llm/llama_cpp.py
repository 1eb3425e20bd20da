"""LlamaCppEngine: GGUF models in-process through llama-cpp-python, continuously batched, off the event loop.

The model is loaded once into one llama.cpp context whose KV cache holds one sequence per slot (each with a
window of ``context_length`` tokens). A request holds one slot for all of its choices: the free slot whose
sequence holds the longest prefix of its prompt (the least recently used one otherwise), so an agent's next
turn computes only what is new. One scheduler thread (``llama_batch.BatchScheduler``) decodes all active
requests together, one batch per step, with new prompts computed in chunks between decode steps; text goes
back to the event loop token by token. The stream yields an empty delta as soon as the request is accepted,
before it waits for a slot or its prompt is computed, so an edge can start its response at once. Stopping
iteration (or cancelling the awaiting task) sets a flag that the scheduler checks before every step, so an
abandoned request frees its slot within one prompt chunk or token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

from mindfu_adapters.llm.llama_batch import BatchScheduler
from mindfu_adapters.llm.llama_config import (
    CHATML_TEMPLATE,
    GGUF_MAGIC,
    LlamaCppConfig,
    check_gguf,
    grammar_of,
)
from mindfu_adapters.llm.llama_plan import Cached, Closed, End, Event, Failed, Job, Prepared, SeqSlot, Text
from mindfu_adapters.llm.planning import (
    SamplingDefaults,
    plan_output,
    plan_sampling,
)
from mindfu_adapters.llm.prompt_cache import HostPromptCache
from mindfu_adapters.llm.shaping import ChoiceShaper, ToolMode
from mindfu_adapters.llm.slots import SlotPool
from mindfu_adapters.llm.tool_format import (
    template_messages,
    tool_schema,
    tools_system_block,
)
from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    EngineStats,
    GenerationRequest,
    Message,
    ModelInfo,
    TextRequest,
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

# Prompts up to this size are rendered and tokenized on the event loop; longer ones in a thread.
INLINE_PREPARE_CHARS = 8192


class LlamaCppEngine:
    """The embedded default engine (``mindfu_core.LLMEngine``)."""

    def __init__(self, config: LlamaCppConfig) -> None:
        check_gguf(config.model_path, config.setting_name)
        if config.slots < 1:
            raise ConfigurationError("the llama.cpp engine needs at least one slot (MINDFU_LLM__SLOTS)")
        self._config = config
        self._created = int(time.time())
        self._requests = 0
        self._tokens = 0
        self._prompt_tokens = 0
        self._cached_tokens = 0
        self._count_lock = threading.Lock()
        self._closed = False
        import llama_cpp
        from llama_cpp._internals import LlamaContext, LlamaModel
        from llama_cpp._logger import set_verbose
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if config.batch_size < config.slots:
            raise ConfigurationError(
                "the batch must hold a token of every slot: MINDFU_LLM__BATCH_SIZE "
                f"({config.batch_size}) is below MINDFU_LLM__SLOTS ({config.slots})"
            )
        set_verbose(False)  # llama.cpp's own log: errors only
        threads = config.threads or max(1, os.cpu_count() or 1)
        model_params = llama_cpp.llama_model_default_params()
        for key, value in config.extra.get("model", {}).items():
            setattr(model_params, key, value)
        model: Any
        context: Any
        try:
            model = LlamaModel(path_model=str(config.model_path), params=model_params, verbose=False)
        except ValueError as exc:
            raise ConfigurationError(
                f"llama.cpp could not load {str(config.model_path)!r} ({exc}); check {config.setting_name}"
            ) from exc
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = config.context_length * config.slots  # each sequence gets its own window
        params.n_seq_max = config.slots
        params.kv_unified = False
        params.n_batch = params.n_ubatch = config.batch_size
        params.n_threads = params.n_threads_batch = threads
        for key, value in config.extra.get("context", {}).items():
            setattr(params, key, value)
        try:
            context = LlamaContext(model=model, params=params, verbose=False)
        except ValueError as exc:
            model.close()
            raise ConfigurationError(
                f"llama.cpp could not create a context of {config.slots} x {config.context_length} tokens "
                f"for {str(config.model_path)!r} ({exc}); "
                "lower MINDFU_LLM__SLOTS or MINDFU_LLM__CONTEXT_LENGTH"
            ) from exc
        self._model, self._context = model, context
        metadata = model.metadata()
        template = config.chat_template or metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        self._native_tools = "tools" in template
        eos, bos = model.token_eos(), model.token_bos()
        self._bos = bos
        self._formatter: Any = Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
        )
        self._n_ctx = llama_cpp.llama_n_ctx_seq(context.ctx)
        self._defaults = SamplingDefaults.of(config)
        self._host_cache = (
            HostPromptCache(config.prompt_cache_bytes) if config.prompt_cache_bytes > 0 else None
        )
        self._slots = [SeqSlot(seq_id) for seq_id in range(config.slots)]
        self._lora: dict[str, Any] = {}  # name -> llama_adapter_lora of the model
        self._adapters: dict[str, Path] = {}
        for name, path in config.adapters.items():
            self._load_adapter(name, path)
            self._adapters[name] = path
        self._pool: SlotPool[SeqSlot] = SlotPool(list(self._slots), max_queue=config.max_queue)
        self._scheduler = BatchScheduler(
            model=model,
            context=context,
            batch_size=config.batch_size,
            cache=self._host_cache,
            adapters=self._lora,
            release=self._pool.release,
            on_token=self._count_token,
        )

    def _load_adapter(self, name: str, path: Path) -> None:
        import llama_cpp

        if not path.is_file():
            raise ConfigurationError(f"the LoRA adapter {name!r} names no file: {str(path)!r}")
        adapter = llama_cpp.llama_adapter_lora_init(self._model.model, str(path).encode())
        if not adapter:  # a NULL pointer, not None
            raise ConfigurationError(
                f"the LoRA adapter {name!r} ({str(path)!r}) does not fit {self._config.model_id!r}: "
                "llama.cpp refused it (a LoRA GGUF of another base model, wrong tensor shapes, or not "
                "a LoRA GGUF at all)"
            )
        self._lora[name] = adapter

    #: what ``add_adapter`` takes: a LoRA GGUF (vLLM takes a PEFT folder)
    adapter_format: Literal["gguf", "peft"] = "gguf"

    def adapter_engines(self) -> list[LLMEngine]:
        """One engine per LoRA adapter, each serving its name on this engine's slots."""
        from mindfu_adapters.llm.lora import LoraAdapterEngine

        return [LoraAdapterEngine(self, name, path) for name, path in self._adapters.items()]

    async def add_adapter(self, name: str, path: Path) -> LLMEngine:
        """Serve one more LoRA adapter (a fine-tuning job's) while running: llama.cpp loads it in the
        scheduler's thread between two steps; ``ConfigurationError`` when it does not fit."""
        from mindfu_adapters.llm.lora import LoraAdapterEngine

        if name in self._adapters:
            raise ConfigurationError(f"an adapter named {name!r} is already served")
        await asyncio.wrap_future(self._scheduler.call(lambda: self._load_adapter(name, path)))
        self._adapters[name] = path
        return LoraAdapterEngine(self, name, path)

    # -- port: introspection ------------------------------------------------------------------------

    def model_info(self) -> ModelInfo:
        return ModelInfo(
            id=self._config.model_id,
            context_length=self._n_ctx,
            created=self._created,
            engine="llama.cpp",
            source=str(self._config.model_path),
            supports_tools=True,
            supports_logprobs=self._config.logprobs,
        )

    def stats(self) -> EngineStats:
        return self._pool.engine_stats(
            requests_total=self._requests,
            tokens_generated_total=self._tokens,
            ready=not self._closed,
            prompt_tokens_total=self._prompt_tokens,
            cached_tokens_total=self._cached_tokens,
            prompt_cache_bytes=self._host_cache.size_bytes if self._host_cache else 0,
            prompt_cache_hits=self._host_cache.hits if self._host_cache else 0,
        )

    async def count_tokens(self, messages: Sequence[Message] | str, tools: Sequence[ToolSpec] = ()) -> int:
        if isinstance(messages, str):
            return len(self._tokenize(messages))
        mode = ToolMode.AUTO if tools else ToolMode.PLAIN
        return len(self._tokenize(self._render(messages, tools, mode, ToolChoice())))

    # -- port: generation ---------------------------------------------------------------------------

    async def complete(self, request: GenerationRequest) -> ChatResult:
        return await collect(request.model, self.stream(request), with_logprobs=request.sampling.logprobs)

    def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        return self.stream_with(request, None)

    async def stream_with(self, request: GenerationRequest, adapter: str | None) -> AsyncIterator[ChatDelta]:
        """``stream``, generating with the LoRA ``adapter`` (a name from the config) when one is given."""
        if _prompt_chars(request) <= INLINE_PREPARE_CHARS:
            prepared = self._prepare(request)  # well under a millisecond: a thread hop would cost more
        else:
            prepared = await asyncio.to_thread(self._prepare, request)
        prepared.adapter = adapter
        self._pool.admit()  # Overloaded before anything is streamed
        # the request is accepted: an empty delta lets an edge send its headers and first event now, while
        # the request waits for a slot and its prompt is computed (which can take minutes for an agent's)
        yield ChatDelta(index=0)
        tokens = prepared.prompt_tokens
        slot = await self._pool.acquire(lambda free: free.affinity(tokens, adapter))
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        cancel = threading.Event()

        def emit(event: Event) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the loop is gone: nobody will read further
                cancel.set()

        try:
            self._scheduler.submit(Job(slot, prepared, cancel, emit))
        except BaseException:
            self._pool.release(slot)
            raise
        with self._count_lock:
            self._requests += 1
        shapers = [ChoiceShaper(i, prepared.mode, prepared.tools) for i in range(prepared.n)]
        completion_tokens = cached_tokens = 0
        try:
            if prepared.echo:
                for i in range(prepared.n):
                    yield ChatDelta(index=i, content=prepared.echo)
            while True:
                match await events.get():
                    case Text(index, text, logprobs):
                        delta = shapers[index].feed(text, logprobs)
                        if delta is not None:
                            yield delta
                    case End(index, reason, produced, matched):
                        completion_tokens += produced
                        for delta in shapers[index].finish(reason, matched):
                            yield delta
                    case Cached(reused):
                        cached_tokens = reused
                        with self._count_lock:
                            self._prompt_tokens += len(tokens)
                            self._cached_tokens += cached_tokens
                    case Failed(error):
                        raise EngineFailure("the engine failed while generating") from error
                    case Closed():
                        break
            yield ChatDelta(
                index=prepared.n - 1,
                usage=Usage(
                    prompt_tokens=len(tokens),
                    completion_tokens=completion_tokens,
                    cached_tokens=cached_tokens,
                ),
            )
        finally:
            cancel.set()
            self._scheduler.interrupt(cancel)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._scheduler.close)
        self._context.close()
        self._model.close()

    # -- internals ----------------------------------------------------------------------------------

    def _count_token(self) -> None:
        with self._count_lock:
            self._tokens += 1

    def _tokenize(self, text: str) -> list[int]:
        tokens: list[int] = self._model.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) >= 2 and tokens[0] == tokens[1] == self._bos:  # the template wrote BOS itself
            tokens = tokens[1:]
        return tokens

    def _render(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], mode: ToolMode, choice: Any
    ) -> str:
        rendered = template_messages(messages, native_tools=self._native_tools)
        kwargs: dict[str, Any] = {}
        if tools and mode is not ToolMode.PLAIN:
            if self._native_tools:
                kwargs["tools"] = [tool_schema(t) for t in tools]
            else:
                block = tools_system_block(tools, choice)
                if rendered and rendered[0]["role"] == "system":
                    rendered[0] = {**rendered[0], "content": f"{rendered[0]['content']}\n\n{block}"}
                else:
                    rendered.insert(0, {"role": "system", "content": block})
        try:
            return str(self._formatter(messages=rendered, **kwargs).prompt)
        except Exception as exc:  # jinja2 errors and the template's own raise_exception
            raise InvalidRequest(
                f"the model's chat template rejected the messages: {exc}", param="messages"
            ) from exc

    def _prepare(self, request: GenerationRequest) -> Prepared:
        output = plan_output(request, logprobs_enabled=self._config.logprobs)
        if isinstance(request, ChatRequest):
            assert output.choice is not None
            prompt = self._render(request.messages, output.tools, output.mode, output.choice)
        else:
            prompt = request.prompt
        tokens = self._tokenize(prompt)
        sampling = plan_sampling(
            request.sampling,
            self._defaults,
            prompt_tokens=len(tokens),
            context_length=self._n_ctx,
            clamp_max_tokens=self._config.clamp_max_tokens,
            where=output.where,
        )
        kwargs: dict[str, Any] = {
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "min_p": sampling.min_p,
            "repeat_penalty": sampling.repeat_penalty,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty,
            "stop": list(sampling.stop),
        }
        if sampling.top_logprobs is not None:
            kwargs["logprobs"] = sampling.top_logprobs
        if output.constraint is not None:
            from llama_cpp.llama_grammar import LlamaGrammar

            kwargs["grammar"] = LlamaGrammar.from_string(grammar_of(output.constraint), verbose=False)
        return Prepared(tokens, kwargs, request.n, output.mode, output.tools, output.echo, sampling.seed)


def _prompt_chars(request: GenerationRequest) -> int:
    if isinstance(request, TextRequest):
        return len(request.prompt)
    return sum(len(m.content or "") for m in request.messages) + sum(
        len(str(t.parameters)) for t in request.tools
    )


__all__ = ["GGUF_MAGIC", "LlamaCppConfig", "LlamaCppEngine", "check_gguf"]
