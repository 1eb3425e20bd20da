"""Settings sources, the default model lookup, and the error tables every edge must cover."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindfu_adapters.llm.backends import resolve_model
from mindfu_adapters.settings import Settings
from mindfu_core.errors import ALL_ERRORS, ConfigurationError
from mindfu_http.errors import HTTP_ERRORS


def test_environment_nested_with_double_underscore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MINDFU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MINDFU_LLM__SLOTS", "3")
    monkeypatch.setenv("MINDFU_HTTP__PORT", "9999")
    monkeypatch.setenv("MINDFU_API_KEYS", "a, b,,c")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.llm.slots == 3
    assert settings.http.port == 9999
    assert settings.all_api_keys() == ["a", "b", "c"]


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "mindfu.toml").write_text("[llm]\nslots = 2\ncontext_length = 2048\n[http]\nport = 1234\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINDFU_HTTP__PORT", "4321")
    settings = Settings()
    assert (settings.llm.slots, settings.llm.context_length, settings.http.port) == (2, 2048, 4321)


def test_default_data_dir_is_per_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINDFU_DATA_DIR", raising=False)
    assert "mindfu" in str(Settings().data_dir)


def test_invalid_settings_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINDFU_LLM__SLOTS", "0")
    with pytest.raises(ValueError, match="slots"):
        Settings()


def test_model_path_and_id(tmp_path: Path) -> None:
    settings = Settings(llm={"model_path": tmp_path / "my-model.Q4.gguf"})  # type: ignore[arg-type]
    assert resolve_model(settings.llm) == (tmp_path / "my-model.Q4.gguf", "my-model.Q4")
    path, model_id = resolve_model(Settings().llm)
    assert model_id == "smollm2-135m-instruct" and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_every_domain_error_has_an_http_status() -> None:
    missing = [cls.__name__ for cls in ALL_ERRORS if cls not in HTTP_ERRORS]
    assert not missing
    assert HTTP_ERRORS[ConfigurationError][0] == 500
