"""Continuous batching for LlamaCppEngine: one llama.cpp context whose KV cache holds one sequence per slot,
and one scheduler thread that decodes every active sequence together, one llama.cpp batch per step.

Each step feeds the token each decoding sequence sampled last (one row each), then fills what is left of
the batch with the next chunk of the prompts still being computed, so a long prompt advances between decode
steps instead of stalling the streams already running (llama-server's continuous batching). Every sequence
keeps its own sampler chain (sampling parameters, seed, grammar, repetition penalties), stop sequences,
token budget and cancel flag. LoRA adapters apply to a whole context, so a step holds the sequences of one
adapter (or of none); when several are active the steps take them in turn.

A cancel stops the step it is part of: llama.cpp polls an abort flag between the nodes of its compute graph,
so a prompt chunk that takes seconds deep in a long prompt on a CPU is dropped at once (the other sequences
of the step redo it in the next one) instead of running to its end.

A slot's sequence keeps its tokens after its request ends: the next request on it computes only what
follows their shared prefix, and the host prompt cache keeps a prefix a request is about to drop.
"""

from __future__ import annotations

import ctypes
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from mindfu_adapters.llm.llama_abort import DECODE_ABORTED, AbortFlag
from mindfu_adapters.llm.llama_plan import Cached, Closed, End, Failed, Job, SeqSlot, Text, plan_step
from mindfu_adapters.llm.llama_sampling import Pieces, build_sampler, token_logprob
from mindfu_adapters.llm.prompt_cache import (
    CachedPrefix,
    HostPromptCache,
    load_sequence,
    save_sequence,
)
from mindfu_adapters.llm.text_stream import StopStream
from mindfu_core.domain.chat import FinishReason

log = logging.getLogger(__name__)

#: a slot's prefix is kept in the host cache before a request drops it only when it is at least this long
KEEP_MIN_TOKENS = 128
#: a kept prefix is restored only when it saves at least this many tokens over what the slot holds
RESTORE_MIN_GAIN = 32


class BatchScheduler:
    """Runs every job of one context in one thread, a batch per step (see the module's docstring).

    ``submit`` and ``call`` are thread-safe; ``release`` is called (from the scheduler thread) with a job's
    slot when the job ends, before its last event ("closed") is emitted.
    """

    def __init__(
        self,
        *,
        model: Any,
        context: Any,
        batch_size: int,
        cache: HostPromptCache | None,
        adapters: dict[str, Any],
        release: Callable[[SeqSlot], None],
        on_token: Callable[[], None],
    ) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaBatch

        self._model = model
        self._ctx = context
        self._vocab = model.vocab
        self._n_ctx_seq = llama_cpp.llama_n_ctx_seq(context.ctx)
        self._batch_size = batch_size
        self._batch: Any = LlamaBatch(n_tokens=batch_size, embd=0, n_seq_max=1, verbose=False)
        self._cache = cache
        self._adapters = adapters  # name -> llama_adapter_lora of the model (shared with the engine)
        self._adapter_on: str | None = None  # what the context applies now
        self._release = release
        self._on_token = on_token
        self._pieces = Pieces(model.vocab)
        self._jobs: list[Job] = []
        self._incoming: deque[Job] = deque()
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._turn = 0
        self._abort = AbortFlag(context)
        self._stepping: tuple[Job, ...] = ()  # the jobs of the llama_decode running now
        self.steps = 0
        self.rows = 0
        self.aborted_steps = 0
        self._thread = threading.Thread(target=self._loop, name="llama-batch", daemon=True)
        self._thread.start()

    # -- from any thread ------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        with self._wake:
            if self._closing:
                raise RuntimeError("the engine is closed")
            self._incoming.append(job)
            self._wake.notify()

    def call(self, function: Callable[[], Any]) -> Future[Any]:
        """Run ``function`` in the scheduler thread between two steps (when nothing uses the context)."""
        future: Future[Any] = Future()
        with self._wake:
            if self._closing:
                raise RuntimeError("the engine is closed")
            self._calls.append((function, future))
            self._wake.notify()
        return future

    def interrupt(self, cancel: threading.Event) -> None:
        """``cancel`` (a job's flag) was just set: stop the running step now if that job is in it."""
        if any(job.cancel is cancel for job in self._stepping):
            self._abort.raise_()

    def close(self) -> None:
        """Stop: running jobs are cancelled, the running step stops, the thread ends."""
        with self._wake:
            self._closing = True
            for job in [*self._jobs, *self._incoming]:
                job.cancel.set()
            self._abort.raise_()
            self._wake.notify()
        self._thread.join()
        self._batch.close()

    # -- the scheduler thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not (self._jobs or self._incoming or self._calls or self._closing):
                    self._wake.wait()
                incoming = list(self._incoming)
                self._incoming.clear()
                calls = list(self._calls)
                self._calls.clear()
                closing = self._closing
            for function, future in calls:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(function())
                    except BaseException as exc:  # handed to the caller
                        future.set_exception(exc)
            for job in incoming:
                self._start(job)
            for job in [j for j in self._jobs if j.cancel.is_set()]:
                self._end(job)
            if closing and not self._jobs:
                return
            if self._jobs:
                try:
                    self._step()
                except Exception as exc:  # the thread must live on: the jobs of this step fail instead
                    for job in list(self._jobs):
                        self._truncate(job.slot, 0)
                    self._fail(list(self._jobs), exc)

    def _start(self, job: Job) -> None:
        try:
            reused = self._reuse(job.slot, job.prepared.prompt_tokens, job.adapter)
            job.emit(Cached(reused))
            self._jobs.append(job)
            self._next_choice(job)
        except Exception as exc:
            self._fail([job], exc)

    def _reuse(self, slot: SeqSlot, prompt: Sequence[int], adapter: str | None) -> int:
        """Make ``slot`` hold the longest prefix of ``prompt`` it or the host cache can give (never all of
        it: the last token is computed to sample from); how many tokens that is."""
        reused = slot.cached_prefix(prompt, adapter)
        if self._cache is not None:
            reused = self._use_host_cache(slot, prompt, adapter, reused)
        reused = min(reused, len(prompt) - 1)
        self._truncate(slot, reused)
        slot.adapter = adapter
        return len(slot.tokens)

    def _truncate(self, slot: SeqSlot, keep: int) -> None:
        import llama_cpp

        if keep < len(slot.tokens) and not llama_cpp.llama_memory_seq_rm(
            self._ctx.memory, slot.seq_id, keep, -1
        ):
            keep = 0  # this memory cannot drop part of a sequence: drop all of it
            llama_cpp.llama_memory_seq_rm(self._ctx.memory, slot.seq_id, -1, -1)
        del slot.tokens[keep:]

    def _use_host_cache(self, slot: SeqSlot, prompt: Sequence[int], adapter: str | None, reused: int) -> int:
        """Keep the slot's prefix before this request drops it, and restore a kept prefix that shares more of
        ``prompt`` than the slot does; the tokens now reusable."""
        assert self._cache is not None
        held = len(slot.tokens)
        found = self._cache.best(prompt, adapter)
        restore = found is not None and min(found[0], len(prompt) - 1) >= reused + RESTORE_MIN_GAIN
        if held - reused >= KEEP_MIN_TOKENS or (restore and held >= KEEP_MIN_TOKENS):
            self._keep(slot)
        if restore and found is not None and self._restore(slot, found[1]):
            self._cache.record_hit(found[0])
            return found[0]
        return reused

    def _keep(self, slot: SeqSlot) -> None:
        assert self._cache is not None
        state = save_sequence(self._ctx, slot.seq_id)
        if state is not None:
            self._cache.put(slot.tokens, slot.adapter, state)

    def _restore(self, slot: SeqSlot, entry: CachedPrefix) -> bool:
        slot.tokens.clear()
        if not load_sequence(self._ctx, slot.seq_id, entry.state):
            return False
        slot.tokens.extend(entry.tokens)
        slot.adapter = entry.adapter
        return True

    def _next_choice(self, job: Job) -> None:
        """Start the job's next choice: its own sampler (seeded ``seed + index``) and stop sequences, and
        the part of the prompt its sequence does not hold (the previous choice's tokens are dropped)."""
        job.index += 1
        prompt = job.prepared.prompt_tokens
        if job.index:
            self._truncate(job.slot, min(job.slot.cached_prefix(prompt, job.adapter), len(prompt) - 1))
        job.todo = list(prompt[len(job.slot.tokens) :])
        job.decoding = False
        job.sampled = 0
        job.logprobs = []
        seed = job.prepared.seed
        job.sampler = build_sampler(
            self._model,
            job.prepared.kwargs,
            random.randint(0, 2**32 - 1) if seed is None else seed + job.index,
        )
        job.text = StopStream(job.prepared.kwargs["stop"])

    def _step(self) -> None:
        import llama_cpp

        adapter = self._group()
        plan = plan_step([job for job in self._jobs if job.adapter == adapter], self._batch_size)
        if not plan:
            return
        self._apply_adapter(adapter)
        batch = self._batch.batch
        rows: list[tuple[Job, int]] = []
        n = 0
        for feed in plan:
            slot = feed.job.slot
            position = len(slot.tokens)
            for offset, token in enumerate(feed.job.todo[: feed.count]):
                batch.token[n] = token
                batch.pos[n] = position + offset
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq_id
                batch.logits[n] = False
                n += 1
            if feed.wants_logits:
                batch.logits[n - 1] = True
                rows.append((feed.job, n - 1))
        batch.n_tokens = n
        # a job cancelled from here on raises the flag (interrupt); one cancelled before is caught below
        self._stepping = tuple(feed.job for feed in plan)
        self._abort.lower()
        if any(job.cancel.is_set() for job in self._stepping):
            self._stepping = ()
            return  # the loop ends the cancelled jobs before the next step
        try:
            status = llama_cpp.llama_decode(self._ctx.ctx, batch)
        finally:
            self._stepping = ()
        if status == DECODE_ABORTED:
            self.aborted_steps += 1
            for feed in plan:  # nothing of this step counts: its cells go, the others redo it next step
                slot = feed.job.slot
                llama_cpp.llama_memory_seq_rm(self._ctx.memory, slot.seq_id, len(slot.tokens), -1)
            return
        if status != 0:
            failed = [feed.job for feed in plan]
            for job in failed:  # what the failed batch left in their cells is unknown
                self._truncate(job.slot, 0)
            self._fail(failed, RuntimeError(f"llama_decode returned {status}"))
            return
        self.steps += 1
        self.rows += n
        for feed in plan:
            feed.job.slot.tokens.extend(feed.job.todo[: feed.count])
            del feed.job.todo[: feed.count]
        for job, row in rows:
            try:
                self._sample(job, row)
            except Exception as exc:
                self._fail([job], exc)

    def _group(self) -> str | None:
        """The adapter whose sequences this step decodes: the only one, or each active one in turn."""
        groups = list(dict.fromkeys(job.adapter for job in self._jobs))
        self._turn += 1
        return groups[self._turn % len(groups)]

    def _apply_adapter(self, name: str | None) -> None:
        import llama_cpp

        if name == self._adapter_on:
            return
        if name is None:
            llama_cpp.llama_set_adapters_lora(self._ctx.ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        self._adapter_on = name

    def _sample(self, job: Job, row: int) -> None:
        import llama_cpp

        token = llama_cpp.llama_sampler_sample(job.sampler.sampler, self._ctx.ctx, row)
        self._on_token()
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._end_choice(job, FinishReason.STOP)
            return
        job.sampled += 1
        piece = self._pieces(token)
        if "logprobs" in job.prepared.kwargs:
            job.logprobs.append(
                token_logprob(self._ctx, row, token, job.prepared.kwargs["logprobs"], self._pieces)
            )
        assert job.text is not None
        fragment = job.text.feed(piece)
        if fragment or job.logprobs:
            job.emit(Text(job.index, fragment, tuple(job.logprobs)))
            job.logprobs = []
        if job.text.stopped:
            self._end_choice(job, FinishReason.STOP)
        elif job.sampled >= job.prepared.kwargs["max_tokens"] or len(job.slot.tokens) + 1 >= self._n_ctx_seq:
            self._end_choice(job, FinishReason.LENGTH)
        else:
            job.todo = [token]
            job.decoding = True

    def _end_choice(self, job: Job, reason: FinishReason) -> None:
        assert job.text is not None
        rest = job.text.flush()
        if rest or job.logprobs:
            job.emit(Text(job.index, rest, tuple(job.logprobs)))
        job.emit(End(job.index, reason, job.sampled, job.text.matched))
        if job.index + 1 < job.prepared.n and not job.cancel.is_set():
            self._next_choice(job)
        else:
            self._end(job)

    def _end(self, job: Job) -> None:
        """The job leaves: its slot is free again (before its stream hears so, so that a session's next turn
        finds it free)."""
        if job in self._jobs:
            self._jobs.remove(job)
        if job.sampler is not None:
            job.sampler.close()
            job.sampler = None
        if job.todo and job.decoding:
            job.todo = []
        self._release(job.slot)
        job.emit(Closed())

    def _fail(self, jobs: Sequence[Job], exc: Exception) -> None:
        log.error("llama.cpp generation failed", exc_info=exc)
        for job in jobs:
            job.emit(Failed(exc))
            self._end(job)


__all__ = ["KEEP_MIN_TOKENS", "RESTORE_MIN_GAIN", "BatchScheduler"]
