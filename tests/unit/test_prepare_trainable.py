"""``mindfu models prepare`` converts the served GGUF into trainable weights only when nothing names them:
the training image, whose base model is a Hugging Face folder in MINDFU_TRAINING__BASE_MODELS, converts
nothing (a 24B GGUF dequantized to float32 would be ~94 GB of work for nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindfu_adapters import container
from mindfu_adapters.settings import Settings
from mindfu_adapters.wiring import training as training_wiring


def test_configured_trainable_weights_are_used_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "Devstral-Small-2-24B-Instruct-2512-Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF")
    folder = tmp_path / "Devstral-Small-2"

    def convert(*_: object, **__: object) -> Path:
        raise AssertionError("converted the GGUF although trainable weights are configured")

    monkeypatch.setattr(training_wiring, "prepare_trainable", convert)
    settings = Settings(
        data_dir=tmp_path / "data",
        llm={"model_path": gguf, "model_id": "devstral-small-2"},
        training={"base_models": {"devstral-small-2": folder}},
    )
    assert container.prepare_trainable(settings) == folder


def test_without_them_the_served_gguf_is_converted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    calls: list[str] = []

    def convert(_settings: Settings, resolved: tuple[Path, str], *, force: bool) -> Path:
        calls.append(resolved[1])
        return tmp_path / "converted"

    monkeypatch.setattr(training_wiring, "prepare_trainable", convert)
    settings = Settings(data_dir=tmp_path / "data", llm={"model_path": gguf, "model_id": "mine"})
    assert container.prepare_trainable(settings) == tmp_path / "converted" and calls == ["mine"]
