"""AWQ export for real on the CPU: llm-compressor in its own environment (``.venv-awq``) quantizes a tiny
Llama into a compressed-tensors W4A16 checkpoint, which transformers runs close to the original; and what
would stop an export is said before anything is written."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mindfu_adapters.export.awq import AwqExport
from mindfu_core.errors import EngineFailure, InvalidRequest
from tests.fixtures.awq import awq_python
from tests.fixtures.tiny_llama import write_tiny_llama

pytestmark = pytest.mark.slow
TEXTS = [f"Question {i}: what is {i} plus {i}? Answer: {i} plus {i} is {2 * i}." for i in range(16)]

# the quantized model against the original, in the AWQ environment (which has compressed-tensors):
# the cosine similarity of their logits over one sequence
COMPARE = """
import sys, torch
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
quantized = AutoModelForCausalLM.from_pretrained(sys.argv[2])
ids = torch.tensor([list(range(5, 69))])
with torch.no_grad():
    a, b = (m(ids).logits.float().flatten() for m in (base, quantized))
print(torch.nn.functional.cosine_similarity(a, b, dim=0).item())
"""


def header(file: Path) -> dict[str, dict[str, object]]:
    """The tensors of a SafeTensors file: name -> dtype and shape."""
    with file.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        entries: dict[str, dict[str, object]] = json.loads(handle.read(size))
    entries.pop("__metadata__", None)
    return entries


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose layer widths are whole quantization groups."""
    return write_tiny_llama(tmp_path_factory.mktemp("wide-llama"), hidden_size=256, intermediate_size=512)


def test_a_tiny_llama_quantizes_on_the_cpu_into_a_checkpoint_that_runs(tmp_path: Path, wide: Path) -> None:
    awq = AwqExport(python=awq_python(), device="cpu")
    awq.check(wide)
    out = awq.export(wide, tmp_path / "awq", TEXTS, max_seq_length=64)
    assert out == tmp_path / "awq" and not (tmp_path / "awq.partial").exists()
    quantization = json.loads((out / "config.json").read_text())["quantization_config"]
    assert (quantization["quant_method"], quantization["format"]) == ("compressed-tensors", "pack-quantized")
    (group,) = quantization["config_groups"].values()
    weights = group["weights"]
    assert (weights["num_bits"], weights["symmetric"], weights["group_size"]) == (4, False, 128)
    assert quantization["ignore"] == ["lm_head"]
    tensors = header(out / "model.safetensors")
    packed = tensors["model.layers.0.mlp.down_proj.weight_packed"]  # 512 inputs: 8 per int32, 4 groups
    assert (packed["dtype"], packed["shape"]) == ("I32", [256, 64])
    assert tensors["model.layers.0.mlp.down_proj.weight_scale"]["shape"] == [256, 4]
    assert "lm_head.weight" in tensors and "lm_head.weight_packed" not in tensors
    assert (out / "tokenizer.json").exists()

    compared = subprocess.run(
        [awq_python(), "-c", COMPARE, str(wide), str(out)], capture_output=True, text=True, check=True
    )
    similarity = float(compared.stdout.strip().splitlines()[-1])
    assert similarity > 0.9, compared.stderr[-2000:]  # 4-bit weights, the same model


def test_what_would_stop_an_export_is_said_before_it_starts(tmp_path: Path, wide: Path) -> None:
    narrow = write_tiny_llama(tmp_path / "narrow")  # hidden 64: half a group
    with pytest.raises(InvalidRequest, match="not whole groups \\(hidden_size 64\\)"):
        AwqExport(python=awq_python(), device="cpu").check(narrow)
    # the main environment has no llm-compressor (it cannot: vLLM's and its pins conflict)
    with pytest.raises(InvalidRequest, match="needs llm-compressor in"):
        AwqExport(python=sys.executable, device="cpu").check(wide)
    with pytest.raises(InvalidRequest, match="cannot run"):
        AwqExport(python=str(tmp_path / "no-python"), device="cpu").check(wide)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(InvalidRequest, match="needs a CUDA GPU"):
            AwqExport(python=awq_python(), device="cuda").check(wide)


def test_a_failed_quantization_leaves_nothing_behind(tmp_path: Path, wide: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 256}))
    with pytest.raises(EngineFailure, match=r"AWQ quantization of .* failed"):
        AwqExport(python=awq_python(), device="cpu").export(broken, tmp_path / "awq", TEXTS)
    assert not (tmp_path / "awq").exists() and not (tmp_path / "awq.partial").exists()
