"""Embedding results."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Embeddings:
    """One vector per input, in order, the model that made them, and the tokens it read."""

    model: str
    vectors: tuple[tuple[float, ...], ...]
    prompt_tokens: int
