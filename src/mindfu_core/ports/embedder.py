"""The Embedder port: text to dense vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class TextFit:
    """How long a text is for an embedder, and the most of one text it reads (the rest is cut off)."""

    tokens: int
    limit: int

    @property
    def fits(self) -> bool:
        return self.tokens <= self.limit


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors of a fixed dimension, in the order given."""

    @property
    def model_id(self) -> str:
        """The embedding model (vectors of different models never share a collection)."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalized vector per text; must not block the event loop."""
        ...

    async def count_tokens(self, texts: Sequence[str]) -> int:
        """How many tokens the model reads for ``texts`` (special tokens included; for usage reports)."""
        ...

    async def measure(self, text: str) -> TextFit:
        """``text``'s length in tokens, whole (special tokens included, before any truncation), and the
        model's limit for one text: a chunk past it would be embedded from its beginning only."""
        ...
