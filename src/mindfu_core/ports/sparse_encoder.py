"""The SparseEncoder port: text to lexical sparse vectors (BM25-style), for hybrid retrieval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from mindfu_core.domain.documents import SparseVector


@runtime_checkable
class SparseEncoder(Protocol):
    """Documents get term weights (saturated term frequency, length-normalized); queries get their terms.

    Inverse document frequency is the store's part: it knows the corpus (Qdrant's IDF modifier).
    """

    @property
    def model_id(self) -> str: ...

    async def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]: ...

    async def encode_query(self, text: str) -> SparseVector: ...
