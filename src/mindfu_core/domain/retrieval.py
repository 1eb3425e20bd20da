"""Retrieval-augmented generation types: per-request options and the sources an answer used."""

from __future__ import annotations

from dataclasses import dataclass

from mindfu_core.domain.documents import Filter


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
class Source:
    """A retrieved chunk as the answer cites it: ``number`` is its ``[n]`` in the context block."""

    number: int
    document_id: str
    name: str
    page: int | None
    chunk_index: int
    score: float
    excerpt: str
