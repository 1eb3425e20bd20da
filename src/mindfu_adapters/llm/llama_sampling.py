"""Per-sequence sampling on a shared llama.cpp context: a sampler chain per choice, log-probabilities read
from a batch row's logits, and token text."""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from mindfu_core.domain.chat import TokenLogprob, TopLogprob

#: recent tokens the repetition penalties look at (llama-cpp-python's default)
PENALTY_LAST_N = 64


def build_sampler(model: Any, kw: dict[str, Any], seed: int) -> Any:
    """A sampler chain in llama-cpp-python's order: penalties, grammar, then greedy at temperature 0 or
    top-k, top-p, min-p, temperature and a seeded draw. Its ``sample`` also accepts the token it draws
    (grammar and penalties move on)."""
    import llama_cpp
    from llama_cpp import _internals

    internals: Any = _internals  # untyped
    sampler = internals.LlamaSampler()
    sampler.add_penalties(
        n_vocab=llama_cpp.llama_vocab_n_tokens(model.vocab),
        penalty_last_n=PENALTY_LAST_N,
        penalty_repeat=kw["repeat_penalty"],
        penalty_freq=kw["frequency_penalty"],
        penalty_present=kw["presence_penalty"],
    )
    if kw.get("grammar") is not None:
        sampler.add_grammar(model, kw["grammar"])
    temperature = kw["temperature"]
    if temperature == 0.0:
        sampler.add_greedy()
    else:
        sampler.add_top_k(kw["top_k"])
        sampler.add_top_p(kw["top_p"], 1)
        sampler.add_min_p(kw["min_p"], 1)
        sampler.add_temp(temperature)
        sampler.add_dist(seed)
    return sampler


class Pieces:
    """Token text as bytes (control tokens give none), through one reused buffer."""

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self._buffer = ctypes.create_string_buffer(64)

    def __call__(self, token: int) -> bytes:
        import llama_cpp

        buffer = self._buffer
        size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if size < 0:  # the buffer is too small: llama.cpp says how much it needs
            self._buffer = buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:size]


def token_logprob(context: Any, row: int, token: int, top: int, pieces: Pieces) -> TokenLogprob:
    """``token``'s log-probability under the model at batch ``row`` (before sampling's filters), and the
    ``top`` likeliest tokens'."""
    import llama_cpp

    n_vocab = llama_cpp.llama_vocab_n_tokens(context.model.vocab)
    pointer = llama_cpp.llama_get_logits_ith(context.ctx, row)
    logits = np.ctypeslib.as_array(pointer, shape=(n_vocab,)).astype(np.float64)
    peak = logits.max()
    logprobs = logits - (peak + np.log(np.exp(logits - peak).sum()))
    best = np.argpartition(-logprobs, top)[:top] if top < n_vocab else np.arange(n_vocab)
    best = best[np.argsort(-logprobs[best])]
    return TokenLogprob(
        token=pieces(token).decode("utf-8", errors="ignore"),
        logprob=float(logprobs[token]),
        top=tuple(
            TopLogprob(token=pieces(int(t)).decode("utf-8", errors="ignore"), logprob=float(logprobs[t]))
            for t in best
        ),
    )


__all__ = ["PENALTY_LAST_N", "Pieces", "build_sampler", "token_logprob"]
