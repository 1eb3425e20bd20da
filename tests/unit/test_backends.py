"""The engine backends as objects (``mindfu_adapters.llm.backends``): model id, source, preflight and the
weights each serves, from the settings alone (nothing is loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindfu_adapters.container import describe_model, served_model_id
from mindfu_adapters.llm.backends import BACKENDS, backend_of, default_model_path
from mindfu_adapters.settings import DEFAULT_MODEL_ID, LlmSettings, Settings
from mindfu_core.errors import ConfigurationError


def test_every_backend_the_settings_name_has_an_object() -> None:
    named = LlmSettings.model_fields["backend"].annotation.__args__  # type: ignore[union-attr]
    assert set(BACKENDS) == set(named)
    for name in named:
        assert backend_of(LlmSettings(backend=name)).name == name
    with pytest.raises(ConfigurationError, match="unknown engine backend 'tgi'"):
        backend_of(LlmSettings.model_construct(backend="tgi"))


def test_llama_cpp_serves_a_gguf(tmp_path: Path) -> None:
    assert describe_model(LlmSettings()) == (DEFAULT_MODEL_ID, str(default_model_path()))
    gguf = tmp_path / "coder-7b.Q4_K_M.gguf"
    llm = LlmSettings(model_path=gguf)
    assert describe_model(llm) == ("coder-7b.Q4_K_M", str(gguf))
    assert backend_of(llm).trainable_as_served(llm) is None  # quantized: converted before training
    with pytest.raises(ConfigurationError):
        backend_of(llm).preflight(llm)  # no such file


def test_vllm_serves_a_folder_trainable_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "Qwen2.5-0.5B"
    llm = LlmSettings(backend="vllm", model_path=folder, model_id="qwen")
    assert describe_model(llm) == ("qwen", str(folder))
    assert backend_of(llm).trainable_as_served(llm) == folder
    hub = LlmSettings(backend="vllm", model_path=Path("mistralai/Devstral-Small-2-24B-Instruct-2512"))
    assert describe_model(hub)[0] == "Devstral-Small-2-24B-Instruct-2512"


def test_an_upstream_needs_its_url_and_a_name() -> None:
    llm = LlmSettings(backend="openai", base_url="http://vllm:8000/v1", upstream_model="org/Devstral")
    assert describe_model(llm) == ("org/Devstral", "http://vllm:8000/v1")
    assert backend_of(llm).trainable_as_served(llm) is None
    unnamed = LlmSettings(backend="openai")
    with pytest.raises(ConfigurationError, match="MINDFU_LLM__BASE_URL"):
        backend_of(unnamed).preflight(unnamed)
    assert served_model_id(Settings(llm=unnamed)) is None
