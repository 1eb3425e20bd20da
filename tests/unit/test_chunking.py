"""Chunking: sizes, overlap, boundaries, offsets, unicode, empty and huge inputs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mindfu_core.domain.documents import ChunkingPolicy, TextSpan
from mindfu_core.errors import InvalidRequest
from mindfu_core.services.chunking import split_pages, split_text, whole_text

SENTENCE = "The quick brown fox jumps over the lazy dog. "


def test_short_text_is_one_chunk() -> None:
    (only,) = split_text("  Hello world.  ")
    assert only.text == "Hello world."
    assert (only.start, only.end) == (2, 14)


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t "])
def test_blank_text_has_no_chunks(text: str) -> None:
    assert split_text(text) == []


def test_paragraph_boundaries_win_over_sentences() -> None:
    first = (SENTENCE * 6).strip()  # ~270 characters
    second = (SENTENCE * 6).strip()
    spans = split_text(f"{first}\n\n{second}", ChunkingPolicy(size=400, overlap=0))
    assert [s.text for s in spans] == [first, second]


def test_sentence_boundaries_win_over_words() -> None:
    text = SENTENCE * 20
    spans = split_text(text, ChunkingPolicy(size=200, overlap=0))
    assert all(s.text.endswith(".") for s in spans)
    assert all(len(s.text) <= 200 for s in spans)


def test_words_are_not_cut_when_there_is_no_sentence() -> None:
    words = " ".join(f"word{i}" for i in range(300))
    spans = split_text(words, ChunkingPolicy(size=100, overlap=0))
    pieces = {w for s in spans for w in s.text.split()}
    assert pieces == set(words.split())


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    spans = split_text(SENTENCE * 40, ChunkingPolicy(size=512, overlap=50))
    assert len(spans) > 2
    for previous, current in itertools.pairwise(spans):
        shared = previous.end - current.start
        assert 0 < shared <= 50
        assert previous.text.endswith(current.text[:shared])


def test_a_word_longer_than_a_chunk_is_cut_hard() -> None:
    spans = split_text("x" * 1000, ChunkingPolicy(size=300, overlap=0))
    assert [len(s.text) for s in spans] == [300, 300, 300, 100]


def test_pages_keep_their_numbers_and_are_never_mixed() -> None:
    spans = split_pages(
        [(1, "Page one text."), (2, ""), (3, SENTENCE * 30)], ChunkingPolicy(size=300, overlap=20)
    )
    assert spans[0].page == 1
    assert spans[0].text == "Page one text."
    assert {s.page for s in spans[1:]} == {3}


def test_policy_limits() -> None:
    with pytest.raises(InvalidRequest):
        ChunkingPolicy(size=8)
    with pytest.raises(InvalidRequest):
        ChunkingPolicy(size=100, overlap=60)


def test_huge_input_is_linear_enough() -> None:
    text = (SENTENCE * 10 + "\n\n") * 5000  # about 2.3 MB
    spans = split_text(text)
    assert len(spans) > 4000
    assert max(len(s.text) for s in spans) <= 512


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(st.sampled_from([*"ab cé漢😀.!?\n\t", "\n\n", ". ", "word "]), max_size=1500).map("".join),
    size=st.integers(min_value=16, max_value=600),
    overlap_ratio=st.floats(min_value=0.0, max_value=0.49),
)
def test_properties(text: str, size: int, overlap_ratio: float) -> None:
    policy = ChunkingPolicy(size=size, overlap=min(int(size * overlap_ratio), size // 2 - 1))
    spans = split_text(text, policy)
    covered = [False] * len(text)
    for span in spans:
        assert span.text
        assert span.text == text[span.start : span.end]
        assert span.text == span.text.strip()
        assert len(span.text) <= size
        for i in range(span.start, span.end):
            covered[i] = True
    for previous, current in itertools.pairwise(spans):
        assert current.start > previous.start
        assert previous.end - current.start <= policy.overlap
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())


def test_whole_text_is_one_chunk_of_every_page() -> None:
    assert whole_text([(None, "  just one  ")]) == [TextSpan(start=0, end=8, text="just one", page=None)]
    assert whole_text([(3, "page three")])[0].page == 3  # one page: its number is kept
    joined = whole_text([(1, "first"), (2, "  "), (3, "third\n")])
    assert [(s.text, s.page) for s in joined] == [("first\n\nthird", None)]
    assert whole_text([(1, " \n "), (2, "")]) == []
