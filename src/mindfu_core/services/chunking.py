"""Split text into overlapping chunks, cutting at paragraph, then sentence, then word boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mindfu_core.domain.documents import ChunkingPolicy, TextSpan

# Boundaries in order of preference; each pattern matches the gap a chunk may end at.
_BOUNDARIES = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph
    re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+"),  # sentence
    re.compile(r"\s+"),  # word
)


def _best_cut(text: str, start: int, end: int, earliest: int) -> int:
    """Where a chunk that may not pass ``end`` ends: the last boundary of the best kind after ``earliest``."""
    for pattern in _BOUNDARIES:
        cut = -1
        for match in pattern.finditer(text, earliest, end + 1):
            if match.start() > start:
                cut = match.start()
        if cut > start:
            return cut
    return end


def _next_start(text: str, cut: int, overlap: int, previous: int) -> int:
    """Start of the next chunk: ``overlap`` characters back from ``cut``, moved forward to a word start."""
    start = max(cut - overlap, previous + 1)
    if overlap and start < cut:
        space = text.find(" ", start, cut)
        newline = text.find("\n", start, cut)
        gaps = [g for g in (space, newline) if g >= 0]
        start = min(gaps) + 1 if gaps else cut
    while start < len(text) and text[start].isspace():
        start += 1
    return start


def split_text(text: str, policy: ChunkingPolicy | None = None, *, page: int | None = None) -> list[TextSpan]:
    """Chunks of ``text``, each at most ``policy.size`` characters, neighbours sharing up to ``overlap``.

    Chunks are stripped of surrounding whitespace; whitespace-only text gives no chunks. Offsets refer to
    ``text``, so ``text[span.start:span.end] == span.text``.
    """
    policy = policy or ChunkingPolicy()
    spans: list[TextSpan] = []
    start = 0
    while start < len(text) and text[start].isspace():
        start += 1
    while start < len(text):
        end = min(start + policy.size, len(text))
        cut = end if end == len(text) else _best_cut(text, start, end, start + policy.size // 2)
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        if piece_end > start:
            spans.append(TextSpan(start=start, end=piece_end, text=text[start:piece_end], page=page))
        if cut >= len(text):
            break
        start = _next_start(text, cut, policy.overlap, start)
    return spans


def split_pages(
    pages: Iterable[tuple[int | None, str]], policy: ChunkingPolicy | None = None
) -> list[TextSpan]:
    """Chunks of a paged document (a PDF): chunks never straddle pages and keep their page number."""
    return [span for number, text in pages for span in split_text(text, policy, page=number)]


def whole_text(pages: Iterable[tuple[int | None, str]]) -> list[TextSpan]:
    """A document as one chunk (its pages joined by blank lines; the page number kept if there is one
    page): for texts a client has already cut to size. Whitespace-only text gives no chunks."""
    kept = [(number, text.strip()) for number, text in pages if text.strip()]
    if not kept:
        return []
    text = "\n\n".join(text for _, text in kept)
    page = kept[0][0] if len(kept) == 1 else None
    return [TextSpan(start=0, end=len(text), text=text, page=page)]
