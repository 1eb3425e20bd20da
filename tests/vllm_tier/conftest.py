"""The vLLM tier's shared pieces: SmolLM2 as the Hugging Face weights vLLM loads (converted from the shipped
GGUF by ``mindfu models prepare``), LoRA adapters made for it (and for another model), and one VllmEngine
for the whole session (vLLM takes 15-30 s to start on these CPUs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from mindfu_adapters.export.hf import find_trainable
from mindfu_adapters.llm.vllm_engine import VllmConfig, VllmEngine
from mindfu_adapters.settings import DEFAULT_MODEL_ID, default_data_dir

CONTEXT = 2048
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="session")
def smollm2_hf() -> Path:
    found = find_trainable(default_data_dir(), DEFAULT_MODEL_ID)
    assert found is not None, "SmolLM2's Hugging Face weights are missing: run `make install`"
    return found


def _save_adapter(model: object, folder: Path, rank: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=LORA_TARGETS,
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    get_peft_model(model, config).save_pretrained(folder)  # type: ignore[arg-type]
    return folder


@pytest.fixture(scope="session")
def lora_adapter(smollm2_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rank-8 adapter of SmolLM2 on every linear layer, with random weights (so it changes the output)."""
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(smollm2_hf, dtype=torch.float32)
    return _save_adapter(base, tmp_path_factory.mktemp("lora") / "smol-lora", 8)


@pytest.fixture(scope="session")
def foreign_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adapter of another model: a small Llama with a hidden size of 256 (SmolLM2's is 576)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=49152,
    )
    return _save_adapter(
        AutoModelForCausalLM.from_config(config), tmp_path_factory.mktemp("lora") / "other", 8
    )


@pytest.fixture(scope="session")
def wide_adapter(smollm2_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An adapter of SmolLM2 with rank 64, above the engine's max_lora_rank of 16."""
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(smollm2_hf, dtype=torch.float32)
    return _save_adapter(base, tmp_path_factory.mktemp("lora") / "wide", 64)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def vllm_engine(smollm2_hf: Path, lora_adapter: Path) -> AsyncIterator[VllmEngine]:
    """SmolLM2 in vLLM (float32: bfloat16 answers poorly on CPU), with a LoRA adapter served beside it and
    vLLM's Hermes tool parser reading the calls the model makes on its own."""
    config = VllmConfig(
        model=str(smollm2_hf),
        model_id="smollm2",
        context_length=CONTEXT,
        dtype="float32",
        slots=8,
        max_queue=16,
        tool_call_parser="hermes",
        clamp_max_tokens=False,  # the contract's strict reading of max_tokens
        adapters={"smol-lora": lora_adapter},
        max_lora_rank=16,
    )
    engine = await asyncio.to_thread(VllmEngine, config)
    await engine.start()
    yield engine
    await engine.aclose()
