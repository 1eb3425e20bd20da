"""Merging keeps the weights' own precision, shard by shard, and the result is the adapter folded in.

A tiny Llama saved in bf16 (and in fp16) across several SafeTensors shards gets a random LoRA adapter (peft,
lora_B randomised so the merge changes every targeted weight); the merged folder is compared with peft's own
``merge_and_unload`` computed in float32."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mindfu_adapters.trainer import merge as merging
from mindfu_adapters.trainer.merge import merge_adapter
from mindfu_core.errors import InvalidRequest
from tests.fixtures.tiny_llama import write_tiny_llama

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")


def write_adapter(base: Path, folder: Path, **lora: Any) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    config = peft.LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM", **lora)
    tuned = peft.get_peft_model(model, config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in tuned.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    tuned.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(folder))
    return folder


def tensors(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    found: dict[str, Any] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        found.update(load_file(str(shard)))
    return found


def weight_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("*.safetensors"))


def reference_logits(base: Path, adapter: Path, ids: Any) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    merged = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    with torch.no_grad():
        return merged(ids).logits


def logits(folder: Path, ids: Any) -> Any:
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)(ids).logits


@pytest.fixture(scope="module")
def bf16_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("bf16"), dtype="bfloat16", max_shard_size="60KB")


@pytest.fixture(scope="module")
def bf16_adapter(bf16_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_adapter(bf16_base, tmp_path_factory.mktemp("adapter"))


@pytest.fixture
def no_peft_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> None:
        raise AssertionError("merged through peft (the whole model in memory), not shard by shard")

    monkeypatch.setattr(merging, "merge_with_peft", refuse)


@pytest.mark.usefixtures("no_peft_merge")
def test_a_bf16_base_merges_into_bf16_shards_of_the_same_size(
    bf16_base: Path, bf16_adapter: Path, tmp_path: Path
) -> None:
    base_index = json.loads((bf16_base / merging.INDEX).read_text())
    assert len(set(base_index["weight_map"].values())) >= 3  # the base really is sharded
    out = Path(merge_adapter(str(bf16_base), str(bf16_adapter), str(tmp_path / "merged")))

    merged = tensors(out)
    assert merged and {str(t.dtype) for t in merged.values()} == {"torch.bfloat16"}
    base = tensors(bf16_base)
    assert merged.keys() == base.keys()
    changed = [name for name in base if not torch.equal(base[name], merged[name])]
    assert len(changed) == 2 * 7  # every linear layer of both blocks; embeddings, norms, lm_head kept
    assert abs(weight_bytes(out) - weight_bytes(bf16_base)) < 4096  # same bytes, bar the JSON headers
    index = json.loads((out / merging.INDEX).read_text())
    assert index["weight_map"] == base_index["weight_map"]
    assert index["metadata"]["total_size"] == sum(t.numel() * 2 for t in merged.values())
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert (out / "tokenizer.json").exists() and not (out / "README.md").exists()

    ids = torch.tensor([[5, 17, 42, 9, 3]])
    expected = reference_logits(bf16_base, bf16_adapter, ids)
    # the one difference from peft's float32 merge is the rounding of each merged weight to bf16
    assert torch.allclose(logits(out, ids), expected, atol=0.05)
    assert not torch.allclose(logits(bf16_base, ids), expected, atol=0.05)  # the adapter does matter


@pytest.mark.usefixtures("no_peft_merge")
def test_float32_only_when_asked(bf16_base: Path, bf16_adapter: Path, tmp_path: Path) -> None:
    out = Path(merge_adapter(str(bf16_base), str(bf16_adapter), str(tmp_path / "m"), dtype="float32"))
    assert {str(t.dtype) for t in tensors(out).values()} == {"torch.float32"}
    assert abs(weight_bytes(out) - 2 * weight_bytes(bf16_base)) < 8192
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    ids = torch.tensor([[7, 1, 30]])
    assert torch.allclose(logits(out, ids), reference_logits(bf16_base, bf16_adapter, ids), atol=1e-3)


@pytest.mark.usefixtures("no_peft_merge")
def test_an_fp16_base_stays_fp16_in_one_file(tmp_path: Path) -> None:
    base = write_tiny_llama(tmp_path / "fp16", dtype="float16")
    adapter = write_adapter(base, tmp_path / "adapter", use_rslora=True)
    out = Path(merge_adapter(str(base), str(adapter), str(tmp_path / "merged")))
    assert [p.name for p in out.glob("*.safetensors")] == ["model.safetensors"]
    assert {str(t.dtype) for t in tensors(out).values()} == {"torch.float16"}
    ids = torch.tensor([[2, 8, 64]])  # rsLoRA scales by alpha / sqrt(r): a wrong scale misses by far
    assert torch.allclose(logits(out, ids), reference_logits(base, adapter, ids), atol=0.02)


def test_an_adapter_it_cannot_fold_goes_through_peft_in_the_same_precision(
    bf16_base: Path, tmp_path: Path
) -> None:
    adapter = write_adapter(bf16_base, tmp_path / "dora", use_dora=True)
    assert merging.lora_pairs(adapter) == "DoRA"
    out = Path(merge_adapter(str(bf16_base), str(adapter), str(tmp_path / "merged")))
    assert {str(t.dtype) for t in tensors(out).values()} == {"torch.bfloat16"}
    ids = torch.tensor([[5, 17, 42]])
    assert torch.allclose(logits(out, ids), reference_logits(bf16_base, adapter, ids), atol=0.05)


def test_bad_requests_leave_no_folder(bf16_base: Path, bf16_adapter: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="merge dtype"):
        merge_adapter(str(bf16_base), str(bf16_adapter), str(tmp_path / "x"), dtype="int8")
    other = write_tiny_llama(tmp_path / "wider", hidden_size=128, intermediate_size=256, dtype="bfloat16")
    with pytest.raises(InvalidRequest, match="does not fit"):
        merge_adapter(str(other), str(bf16_adapter), str(tmp_path / "y"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
