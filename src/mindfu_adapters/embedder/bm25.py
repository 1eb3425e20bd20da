"""Bm25SparseEncoder: BM25 term weights as sparse vectors, offline (Snowball stemming, English stop words).

A document term gets BM25's saturated, length-normalized frequency ``tf·(k1+1) / (tf + k1·(1-b+b·len/avg))``;
a query term gets 1. The store multiplies in the inverse document frequency it keeps for the corpus, so a
dot product of the two is the BM25 score. Terms are hashed (CRC-32) to indices: no vocabulary to keep.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence

from mindfu_core.domain.documents import SparseVector
from mindfu_core.errors import ConfigurationError

_TOKEN = re.compile(r"\w+", re.UNICODE)
MAX_TOKEN_CHARS = 40
# The usual English stop words (Snowball's list, less the negations, which carry meaning in claims).
STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself of off on once only or other our ours ourselves out over own same she should so some such
    than that the their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your yours
    yourself yourselves
    """.split()  # noqa: SIM905
)


class Bm25SparseEncoder:
    """A ``SparseEncoder`` for BM25 (``k1``, ``b`` and the average chunk length in terms are tunable)."""

    def __init__(
        self, *, language: str = "english", k1: float = 1.2, b: float = 0.75, average_length: float = 60.0
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1 or average_length <= 0:
            raise ConfigurationError("BM25 needs k1 >= 0, 0 <= b <= 1 and a positive average length")
        self._k1 = k1
        self._b = b
        self._average = average_length
        self._stem = _stemmer(language)
        self._language = language

    @property
    def model_id(self) -> str:
        return f"bm25-{self._language}"

    def terms(self, text: str) -> list[str]:
        """Lower-cased, stop words dropped, stemmed."""
        return [
            self._stem(token)
            for token in _TOKEN.findall(text.lower())
            if token not in STOP_WORDS and len(token) <= MAX_TOKEN_CHARS
        ]

    def encode_document(self, text: str) -> SparseVector:
        terms = self.terms(text)
        if not terms:
            return SparseVector()
        norm = self._k1 * (1 - self._b + self._b * len(terms) / self._average)
        weights: dict[int, float] = {}
        for term, tf in Counter(terms).items():
            index = _index(term)
            weights[index] = weights.get(index, 0.0) + tf * (self._k1 + 1) / (tf + norm)
        return _sparse(weights)

    async def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return [self.encode_document(text) for text in texts]

    async def encode_query(self, text: str) -> SparseVector:
        return _sparse({_index(term): 1.0 for term in set(self.terms(text))})


def _index(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))


def _sparse(weights: dict[int, float]) -> SparseVector:
    ordered = sorted(weights.items())
    return SparseVector(indices=tuple(i for i, _ in ordered), values=tuple(v for _, v in ordered))


def _stemmer(language: str) -> Callable[[str], str]:
    try:
        from py_rust_stemmers import SnowballStemmer
    except ImportError:  # fastembed's dependency; without it, terms are matched unstemmed
        return lambda word: word
    try:
        stemmer = SnowballStemmer(language)
    except (ValueError, KeyError) as exc:
        raise ConfigurationError(f"no Snowball stemmer for {language!r}") from exc
    stem: Callable[[str], str] = stemmer.stem_word
    return stem
