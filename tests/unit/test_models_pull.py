"""Where embedding models come from: the prepared export, or a catalogue model `models pull` fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindfu_adapters.container import build_container, pulled_models_dir
from mindfu_adapters.embedder.fastembed import FastEmbedEmbedder
from mindfu_adapters.settings import Settings
from mindfu_cli.main import main
from mindfu_core.errors import ConfigurationError


def test_unknown_model_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "no-such/model"]) == 2
    assert "not a fastembed model" in capsys.readouterr().err


async def test_a_catalogue_model_that_was_not_pulled_says_how_to_get_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding={"model_name": "BAAI/bge-small-en-v1.5"})  # type: ignore[arg-type]
    embedder = build_container(settings).embedder()
    assert isinstance(embedder, FastEmbedEmbedder)
    assert (embedder.model_id, embedder.dimension) == ("bge-small-en-v1.5", 384)
    with pytest.raises(ConfigurationError, match=r"mindfu models pull BAAI/bge-small-en-v1\.5"):
        await embedder.embed(["hello"])
    assert pulled_models_dir(settings) == tmp_path / "models" / "fastembed"


def test_a_fresh_data_dir_uses_the_export_make_install_prepared(tmp_path: Path) -> None:
    from mindfu_adapters.embedder.prepare import ONNX_FILE, default_model_dir, prepared_model_dir

    shared = default_model_dir()
    assert (shared / ONNX_FILE).is_file(), "make install prepares the default export"
    assert prepared_model_dir(tmp_path) == shared
    own = default_model_dir(tmp_path)
    own.mkdir(parents=True)
    (own / ONNX_FILE).write_bytes(b"")
    assert prepared_model_dir(tmp_path) == own  # a data directory's own export wins
