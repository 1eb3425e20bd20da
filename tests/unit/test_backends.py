"""The engine backends as objects (``mindfu_adapters.llm.backends``): model id, source, preflight and the
weights each serves, from the settings alone (nothing is loaded)."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from mindfu_adapters.container import describe_model, served_model_id
from mindfu_adapters.llm.backends import BACKENDS, backend_of, default_model_path
from mindfu_adapters.llm_settings import Backend, LlamaCppSettings, UpstreamSettings, VllmSettings
from mindfu_adapters.settings import DEFAULT_MODEL_ID, Settings, llm_settings
from mindfu_core.errors import ConfigurationError


def test_every_backend_the_settings_name_has_an_object() -> None:
    named = typing.get_args(Backend)
    assert set(BACKENDS) == set(named)
    for name in named:
        assert backend_of(llm_settings(backend=name)).name == name
    with pytest.raises(ConfigurationError, match="unknown engine backend 'tgi'"):
        backend_of(LlamaCppSettings.model_construct(backend="tgi"))


def test_backend_picks_the_settings_class_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``MINDFU_LLM__BACKEND`` picks the class; each keeps its variables; one of another backend is refused
    with a message naming that backend, rather than ignored."""
    assert isinstance(Settings().llm, LlamaCppSettings)
    monkeypatch.setenv("MINDFU_LLM__BACKEND", "vllm")
    monkeypatch.setenv("MINDFU_LLM__DTYPE", "bfloat16")
    monkeypatch.setenv("MINDFU_LLM__TOP_K", "20")
    llm = Settings().llm
    assert isinstance(llm, VllmSettings) and (llm.dtype, llm.top_k) == ("bfloat16", 20)
    monkeypatch.setenv("MINDFU_LLM__BACKEND", "openai")
    with pytest.raises(
        ValidationError, match=r"MINDFU_LLM__DTYPE is a setting of the vllm backend, not of openai"
    ):
        Settings()
    monkeypatch.delenv("MINDFU_LLM__BACKEND")
    monkeypatch.delenv("MINDFU_LLM__TOP_K")
    with pytest.raises(
        ValidationError, match=r"MINDFU_LLM__DTYPE is a setting of the vllm backend, not of llama_cpp"
    ):
        Settings()
    monkeypatch.setenv("MINDFU_LLM__BACKEND", "tgi")
    monkeypatch.delenv("MINDFU_LLM__DTYPE")
    with pytest.raises(ValidationError, match="tgi"):
        Settings()
    monkeypatch.delenv("MINDFU_LLM__BACKEND")
    more = [{"backend": "openai", "model_id": "big", "base_url": "http://x/v1"}]
    models = Settings(models=more)  # type: ignore[arg-type]
    assert isinstance(models.models[0], UpstreamSettings)


def test_llama_cpp_serves_a_gguf(tmp_path: Path) -> None:
    assert describe_model(llm_settings()) == (DEFAULT_MODEL_ID, str(default_model_path()))
    gguf = tmp_path / "coder-7b.Q4_K_M.gguf"
    llm = llm_settings(model_path=gguf)
    assert describe_model(llm) == ("coder-7b.Q4_K_M", str(gguf))
    assert backend_of(llm).trainable_as_served(llm) is None  # quantized: converted before training
    with pytest.raises(ConfigurationError):
        backend_of(llm).preflight(llm)  # no such file


def test_vllm_serves_a_folder_trainable_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "Qwen2.5-0.5B"
    llm = llm_settings(backend="vllm", model_path=folder, model_id="qwen")
    assert describe_model(llm) == ("qwen", str(folder))
    assert backend_of(llm).trainable_as_served(llm) == folder
    hub = llm_settings(backend="vllm", model_path=Path("mistralai/Devstral-Small-2-24B-Instruct-2512"))
    assert describe_model(hub)[0] == "Devstral-Small-2-24B-Instruct-2512"


def test_an_upstream_needs_its_url_and_a_name() -> None:
    llm = llm_settings(backend="openai", base_url="http://vllm:8000/v1", upstream_model="org/Devstral")
    assert describe_model(llm) == ("org/Devstral", "http://vllm:8000/v1")
    assert backend_of(llm).trainable_as_served(llm) is None
    unnamed = llm_settings(backend="openai")
    with pytest.raises(ConfigurationError, match="MINDFU_LLM__BASE_URL"):
        backend_of(unnamed).preflight(unnamed)
    assert served_model_id(Settings(llm=unnamed)) is None
