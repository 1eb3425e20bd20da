"""Merge a LoRA adapter into its base model in the weights' own precision, one SafeTensors shard at a time.

``peft``'s ``merge_and_unload`` needs the whole model in memory, and the trainer used to load it in float32
on the CPU: a 24B merge then needed ~94 GB and wrote float32 files twice the size of the bf16 original.
Here each base shard is read tensor by tensor, a targeted weight gets ``W + scale * B @ A`` (computed in
float32 on CUDA when there is one, then cast back), and the shard is written before the next is read: the
peak is about one shard plus the adapter, and every tensor keeps its dtype unless ``dtype`` asks for another.

Adapters this cannot fold exactly (DoRA, per-module rank or alpha patterns, ``fan_in_fan_out``, trained
biases, extra saved modules, keys that do not name a base weight) and bases without SafeTensors go through
peft instead, with the model loaded in its own dtype.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindfu_core.errors import InvalidRequest

log = logging.getLogger(__name__)
MERGE_DTYPES = ("auto", "bfloat16", "float16", "float32")
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."
#: Files of a model folder that are weights, or the base's own card: never copied into the merged folder.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack")
SKIPPED = {INDEX, "pytorch_model.bin.index.json", "README.md", ".gitattributes", "mindfu-trainable.json"}
#: Small files copied from the base (configs, tokenizer, processor); anything larger is left behind.
MAX_COPIED_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoraPair:
    """One adapted weight: ``delta = scale * B @ A``."""

    a: Any
    b: Any
    scale: float


def torch_dtype(name: str) -> Any:
    import torch

    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if name not in dtypes:
        raise InvalidRequest(f"unknown merge dtype {name!r} (auto, bfloat16, float16, float32)")
    return dtypes[name]


def base_shards(base: Path) -> list[str] | None:
    """The base's SafeTensors files in order, or None when it has none (peft merges it then)."""
    index = base / INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return sorted(set(weight_map.values()))
    if (base / SINGLE).is_file():
        return [SINGLE]
    return None


def _why_not_streamed(config: Mapping[str, Any]) -> str | None:
    if config.get("peft_type") != "LORA":
        return f"peft type {config.get('peft_type')}"
    checks = {
        "use_dora": "DoRA",
        "rank_pattern": "per-module ranks",
        "alpha_pattern": "per-module alphas",
        "fan_in_fan_out": "fan_in_fan_out layers",
        "modules_to_save": "extra saved modules",
        "layers_to_transform": "selected layers",
    }
    for key, what in checks.items():
        if config.get(key):
            return what
    if config.get("bias", "none") != "none":
        return "trained biases"
    return None


def lora_pairs(adapter: Path) -> dict[str, LoraPair] | str:
    """Base weight name -> its LoRA pair, or why the adapter cannot be folded shard by shard."""
    from safetensors.torch import load_file

    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    reason = _why_not_streamed(config)
    if reason is not None:
        return reason
    if not (adapter / ADAPTER_WEIGHTS).is_file():
        return f"no {ADAPTER_WEIGHTS}"
    r = int(config["r"])
    alpha = float(config["lora_alpha"])
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    tensors = load_file(str(adapter / ADAPTER_WEIGHTS))
    halves: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        for half in ("lora_A", "lora_B"):
            marker = f".{half}.weight"
            if key.startswith(PREFIX) and key.endswith(marker):
                module = key[len(PREFIX) : -len(marker)]
                halves.setdefault(module, {})[half] = tensor
                break
        else:
            return f"adapter tensor {key!r}"
    pairs: dict[str, LoraPair] = {}
    for module, pair in halves.items():
        if set(pair) != {"lora_A", "lora_B"}:
            return f"half a LoRA pair for {module!r}"
        pairs[f"{module}.weight"] = LoraPair(a=pair["lora_A"], b=pair["lora_B"], scale=scale)
    return pairs


def _copy_side_files(base: Path, adapter: Path, out: Path, dtype_name: str | None) -> None:
    for path in sorted(base.iterdir()):
        small = path.is_file() and path.stat().st_size <= MAX_COPIED_BYTES
        if small and path.name not in SKIPPED and not path.name.endswith(WEIGHT_SUFFIXES):
            shutil.copy2(path, out / path.name)
    _save_tokenizer(adapter, out)
    if dtype_name is not None and (out / "config.json").is_file():
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        for key in ("torch_dtype", "dtype"):
            if key in config or key == "dtype":
                config[key] = dtype_name
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file()


def _save_tokenizer(source: Path, out: Path) -> None:
    """The trainer saves its tokenizer (chat template included) beside the adapter: that one wins over the
    base's files; an adapter without one keeps the base's, copied as they are."""
    if not _has_tokenizer(source):
        return
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(out))


def merge_streaming(
    base: Path,
    adapter: Path,
    out: Path,
    shards: list[str],
    pairs: Mapping[str, LoraPair],
    dtype_name: str | None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    device = "cuda" if torch.cuda.is_available() else "cpu"
    target = torch_dtype(dtype_name) if dtype_name is not None else None
    remaining = set(pairs)
    total_size = 0
    for number, shard in enumerate(shards, 1):
        merged: dict[str, Any] = {}
        with safe_open(str(base / shard), framework="pt") as tensors:
            metadata = tensors.metadata() or {}
            for name in tensors.keys():  # noqa: SIM118 - safe_open is not a mapping
                weight = tensors.get_tensor(name)
                kept = target if target is not None and weight.is_floating_point() else weight.dtype
                pair = pairs.get(name)
                if pair is not None:
                    a = pair.a.to(device, torch.float32)
                    b = pair.b.to(device, torch.float32)
                    if weight.shape != (b.shape[0], a.shape[1]):
                        raise InvalidRequest(
                            f"the adapter does not fit the base model: {name} is {tuple(weight.shape)}, "
                            f"the LoRA pair gives {(b.shape[0], a.shape[1])}"
                        )
                    delta = (b @ a).mul_(pair.scale)
                    weight = weight.to(device, torch.float32).add_(delta)
                    remaining.discard(name)
                merged[name] = weight.to("cpu", kept).contiguous()  # rounded once, to the kept dtype
        save_file(merged, str(out / shard), metadata={**metadata, "format": "pt"})
        total_size += sum(t.numel() * t.element_size() for t in merged.values())
        del merged
        if progress is not None:
            progress(number, len(shards))
    if remaining:
        raise InvalidRequest(f"the adapter names weights the base model lacks: {sorted(remaining)[:5]}")
    if (base / INDEX).is_file():
        index = json.loads((base / INDEX).read_text(encoding="utf-8"))
        index["metadata"] = {**index.get("metadata", {}), "total_size": total_size}
        (out / INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    _copy_side_files(base, adapter, out, dtype_name)


def merge_with_peft(base: Path, adapter: Path, out: Path, dtype_name: str | None) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = torch_dtype(dtype_name) if dtype_name is not None else "auto"
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True, max_shard_size="5GB")
    _save_tokenizer(adapter if _has_tokenizer(adapter) else base, out)


def merge_adapter(
    base_model: str,
    adapter_dir: str,
    output_dir: str,
    *,
    dtype: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Fold ``adapter_dir`` into ``base_model`` and write ``output_dir`` (never half-written under its name).

    ``dtype`` "auto" keeps each weight's own dtype (bf16 stays bf16); a name casts every floating weight.
    ``progress(shard, shards)`` is called after each shard written."""
    base, adapter, out = Path(base_model), Path(adapter_dir), Path(output_dir)
    dtype_name = None if dtype == "auto" else dtype
    if dtype_name is not None:
        torch_dtype(dtype_name)  # a bad name fails before any work
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        shards = base_shards(base) if base.is_dir() else None
        pairs = lora_pairs(adapter) if shards is not None else "no SafeTensors in the base folder"
        if isinstance(pairs, str) or shards is None:
            log.info("merging %s through peft (whole model in memory): %s", adapter, pairs)
            merge_with_peft(base, adapter, partial, dtype_name)
        else:
            covered = {name for shard in shards for name in _names(base / shard)}
            missing = sorted(set(pairs) - covered)
            if missing:  # e.g. checkpoint keys renamed from module names: peft knows the mapping
                log.info("merging %s through peft: %s not in the base's files", adapter, missing[:3])
                merge_with_peft(base, adapter, partial, dtype_name)
            else:
                merge_streaming(base, adapter, partial, shards, pairs, dtype_name, progress)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    partial.replace(out)
    return str(out)


def _names(shard: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(shard), framework="pt") as tensors:
        return list(tensors.keys())
