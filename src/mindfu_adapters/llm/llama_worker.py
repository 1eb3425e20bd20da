"""The worker side of LlamaCppEngine: a slot's llama.cpp context, and the loops that generate one choice."""

from __future__ import annotations

import ctypes
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mindfu_adapters.llm.prompt_cache import CachedPrefix, HostPromptCache, shared_prefix
from mindfu_adapters.llm.shaping import ToolMode
from mindfu_adapters.llm.text_stream import StopStream
from mindfu_core.domain.chat import FinishReason, TokenLogprob, ToolSpec, TopLogprob

Emit = Callable[[tuple[Any, ...]], None]

#: a slot's prefix is kept in the host cache before a request drops it only when it is at least this long
KEEP_MIN_TOKENS = 128
#: a kept prefix is restored only when it saves at least this many tokens over what the slot holds
RESTORE_MIN_GAIN = 32


class LlamaSlot:
    """One llama.cpp context and the count of tokens it sampled for the request it is serving.

    ``Llama.sample`` is wrapped on the instance: it runs once per sampled token, which makes the count
    exact (llama-cpp-python's stopping criteria also run once after the loop, and not for every token).
    """

    def __init__(self, llm: Any, on_token: Callable[[], None], cache: HostPromptCache | None = None) -> None:
        import llama_cpp

        self.llm = llm
        self.cache = cache
        self.sampled = 0
        vocab = llm._model.vocab
        original = llm.sample

        def counting_sample(*args: Any, **kwargs: Any) -> int:
            token: int = original(*args, **kwargs)
            if not llama_cpp.llama_vocab_is_eog(vocab, token):
                self.sampled += 1
            on_token()
            return token

        llm.sample = counting_sample

        self._vocab = vocab
        self._piece = ctypes.create_string_buffer(64)
        self.adapters: dict[str, Any] = {}  # name -> this slot's llama_adapter_lora (adapters are per model)
        self._active_adapter: str | None = None

    def reset(self) -> None:
        self.sampled = 0

    def cached_prefix(self, tokens: Sequence[int], adapter: str | None) -> int:
        """How many leading ``tokens`` this slot's KV cache already holds (none under another adapter)."""
        if adapter != self._active_adapter:
            return 0
        llm = self.llm
        held = llm.input_ids[: min(llm.n_tokens, len(tokens))].tolist()
        return shared_prefix(held, tokens[: len(held)])

    def affinity(self, tokens: Sequence[int], adapter: str | None) -> int:
        """How much a request with ``tokens`` gains from this slot: the prefix it reuses, when that is at
        least half of what the slot holds (a few shared tokens, such as a chat template's opening, are not
        worth another conversation's cache; the pool then picks the least recently used slot)."""
        shared = self.cached_prefix(tokens, adapter)
        return shared if shared * 2 >= self.llm.n_tokens else 0

    def prefill(self, tokens: Sequence[int], cancel: threading.Event, chunk: int) -> int | None:
        """Compute ``tokens`` into the KV cache but their last one (which generation computes to sample
        from), reusing the longest prefix the slot or the host cache holds, ``chunk`` tokens at a time so that
        a cancel stops it within one chunk. The number of tokens reused, or None when cancelled."""
        llm = self.llm
        reused = self.cached_prefix(tokens, self._active_adapter)
        if self.cache is not None:
            reused = self._use_host_cache(tokens, reused)
        reused = min(reused, len(tokens) - 1)
        llm.n_tokens = max(reused, 0)  # eval drops whatever the cache holds past this point
        position = llm.n_tokens
        while position < len(tokens) - 1:
            if cancel.is_set():
                return None
            end = min(position + chunk, len(tokens) - 1)
            llm.eval(tokens[position:end])
            position = end
        return max(reused, 0)

    def _use_host_cache(self, tokens: Sequence[int], reused: int) -> int:
        """Keep the slot's prefix before this request drops it, and restore a kept prefix that shares more
        of ``tokens`` than the slot does; the tokens now reusable."""
        assert self.cache is not None
        held = self.llm.n_tokens
        found = self.cache.best(tokens, self._active_adapter)
        restore = found is not None and min(found[0], len(tokens) - 1) >= reused + RESTORE_MIN_GAIN
        if held - reused >= KEEP_MIN_TOKENS or (restore and held >= KEEP_MIN_TOKENS):
            self._keep()
        if restore and found is not None and self._restore(found[1]):
            self.cache.record_hit(found[0])
            return found[0]
        return reused

    def _keep(self) -> None:
        import llama_cpp

        assert self.cache is not None
        llm = self.llm
        ctx = llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        if written:
            tokens = llm.input_ids[: llm.n_tokens].tolist()
            self.cache.put(tokens, self._active_adapter, bytes(buffer)[:written])

    def _restore(self, entry: CachedPrefix) -> bool:
        import llama_cpp

        llm = self.llm
        llm._ctx.kv_cache_seq_rm(0, 0, -1)
        llm.n_tokens = 0
        buffer = (ctypes.c_uint8 * len(entry.state)).from_buffer_copy(entry.state)
        if not llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(entry.state), 0):
            llm._ctx.kv_cache_seq_rm(0, 0, -1)
            return False
        count = len(entry.tokens)
        llm.input_ids[:count] = entry.tokens
        llm.n_tokens = count
        return True

    def load_adapter(self, name: str, path: str) -> bool:
        """Load a LoRA GGUF onto this slot's model; False when llama.cpp refuses it (wrong base model)."""
        import llama_cpp

        adapter = llama_cpp.llama_adapter_lora_init(self.llm._model.model, path.encode())
        if not adapter:  # a NULL pointer, not None
            return False
        self.adapters[name] = adapter
        return True

    def use_adapter(self, name: str | None) -> None:
        """Generate with ``name`` (or the bare model). The KV cache was computed under the previous
        adapter, so a change also drops the cached prompt prefix."""
        import llama_cpp

        if name == self._active_adapter:
            return
        ctx = self.llm._ctx.ctx
        if name is None:
            llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.adapters[name])
            llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        self.llm.reset()
        self._active_adapter = name

    def piece(self, token: int) -> bytes:
        """The bytes of ``token`` as text (control tokens give none)."""
        import llama_cpp

        size = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
        if size < 0:  # the buffer is too small: llama.cpp says how much it needs
            self._piece = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
        return self._piece.raw[:size]


@dataclass(slots=True)
class Prepared:
    prompt_tokens: list[int]
    kwargs: dict[str, Any]
    n: int
    mode: ToolMode
    tools: Sequence[ToolSpec]
    echo: str = ""
    seed: int | None = None
    adapter: str | None = None  # a LoRA adapter to generate with
    prefill_chunk: int = 512  # prompt tokens computed between two looks at the cancel flag


def run_choice(
    slot: LlamaSlot,
    prepared: Prepared,
    index: int,
    seed: int | None,
    cancel: threading.Event,
    emit: Callable[[tuple[Any, ...]], None],
) -> tuple[FinishReason, str | None] | None:
    """One choice on llama-cpp-python's token generator, detokenizing incrementally (O(1) per token); how
    it ended (and the stop sequence that ended it), or None when cancelled."""
    import llama_cpp

    llm, kw = slot.llm, prepared.kwargs
    llm.set_seed(seed if seed is not None else random.randint(0, 2**32 - 1))
    vocab = llm._model.vocab
    text = StopStream(kw["stop"])
    tokens = llm.generate(
        prepared.prompt_tokens,
        top_k=kw["top_k"],
        top_p=kw["top_p"],
        min_p=kw["min_p"],
        temp=kw["temperature"],
        repeat_penalty=kw["repeat_penalty"],
        frequency_penalty=kw["frequency_penalty"],
        presence_penalty=kw["presence_penalty"],
        grammar=kw.get("grammar"),
    )
    reason = FinishReason.LENGTH
    try:
        for token in tokens:
            if cancel.is_set():
                return None
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                reason = FinishReason.STOP
                break
            fragment = text.feed(slot.piece(token))
            if fragment:
                emit(("text", index, fragment, ()))
            if text.stopped:
                reason = FinishReason.STOP
                break
            if slot.sampled >= kw["max_tokens"]:
                break
    finally:
        tokens.close()
    rest = text.flush()
    if rest:
        emit(("text", index, rest, ()))
    return reason, text.matched


def run_choice_with_logprobs(
    slot: LlamaSlot,
    prepared: Prepared,
    index: int,
    seed: int | None,
    cancel: threading.Event,
    emit: Callable[[tuple[Any, ...]], None],
) -> tuple[FinishReason, str | None] | None:
    """One choice through ``create_completion``, which knows how to read log-probabilities (and applies the
    stop sequences itself, without saying which one matched)."""
    from llama_cpp import StoppingCriteriaList

    def stop_when_cancelled(_ids: Any, _logits: Any) -> bool:
        return cancel.is_set()

    reason = FinishReason.LENGTH
    chunks = slot.llm.create_completion(
        prompt=prepared.prompt_tokens,
        stream=True,
        seed=seed,
        stopping_criteria=StoppingCriteriaList([stop_when_cancelled]),
        **prepared.kwargs,
    )
    for chunk in chunks:
        if cancel.is_set():
            chunks.close()
            return None
        choice = chunk["choices"][0]
        text = choice.get("text") or ""
        logprobs = convert_logprobs(choice.get("logprobs"))
        if text or logprobs:
            emit(("text", index, text, logprobs))
        if choice.get("finish_reason"):
            reason = FinishReason(choice["finish_reason"])
    return reason, None


def convert_logprobs(raw: dict[str, Any] | None) -> tuple[TokenLogprob, ...]:
    if not raw:
        return ()
    tops = raw.get("top_logprobs") or [None] * len(raw["tokens"])
    return tuple(
        TokenLogprob(
            token=token,
            logprob=float(logprob if logprob is not None else 0.0),
            top=tuple(TopLogprob(token=t, logprob=float(v)) for t, v in (top or {}).items()),
        )
        for token, logprob, top in zip(raw["tokens"], raw["token_logprobs"], tops, strict=False)
    )
