"""Retrieval-augmented generation types: per-request options and the sources an answer used."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

from mindfu_core.domain.documents import Filter

T = TypeVar("T")


class Unset(enum.Enum):
    """An override a request did not give (``None`` is a value some options take)."""

    UNSET = "unset"


UNSET = Unset.UNSET


def _given(value: T | Unset, default: T) -> T:
    return default if isinstance(value, Unset) else value


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalOptions:
    """Whether and how a chat request is grounded in stored chunks.

    ``hybrid`` fuses the dense (cosine) ranking with a lexical BM25 ranking by reciprocal rank; its scores
    are then fusion scores, and ``min_score`` applies to the dense side only.
    """

    enabled: bool = True
    top_k: int = 4
    min_score: float | None = 0.25
    collection: str = "default"
    where: Filter | None = None
    hybrid: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalOverrides:
    """The retrieval options one request gives; the server's defaults fill the rest (``apply``)."""

    enabled: bool | Unset = UNSET
    top_k: int | Unset = UNSET
    min_score: float | Unset | None = UNSET  # None: no threshold
    collection: str | Unset = UNSET
    where: Filter | Unset | None = UNSET
    hybrid: bool | Unset = UNSET

    def apply(self, defaults: RetrievalOptions) -> RetrievalOptions:
        return RetrievalOptions(
            enabled=_given(self.enabled, defaults.enabled),
            top_k=_given(self.top_k, defaults.top_k),
            min_score=_given(self.min_score, defaults.min_score),
            collection=_given(self.collection, defaults.collection),
            where=_given(self.where, defaults.where),
            hybrid=_given(self.hybrid, defaults.hybrid),
        )


NO_OVERRIDES = RetrievalOverrides()


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """A retrieved chunk as the answer cites it: ``number`` is its ``[n]`` in the context block."""

    number: int
    document_id: str
    name: str
    page: int | None
    chunk_index: int
    score: float
    excerpt: str
