"""LoRA adapters for vLLM checked before vLLM sees them: a PEFT folder whose rank and layer shapes fit the
base model (read from SafeTensors headers), since vLLM kills its engine on one that does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mindfu_core.errors import ConfigurationError


def _tensor_shapes(folder: Path, stem: str) -> dict[str, list[int]]:
    """Tensor name -> shape, from the SafeTensors headers of ``stem``.safetensors (or its shards)."""
    from safetensors import safe_open

    single = folder / f"{stem}.safetensors"
    index = folder / f"{stem}.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        shards = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()
        files = [folder / name for name in sorted(set(shards))]
    else:
        return {}
    shapes: dict[str, list[int]] = {}
    for file in files:
        with safe_open(str(file), framework="np") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shapes[name] = list(handle.get_slice(name).get_shape())
    return shapes


def check_lora_adapter(name: str, path: Path, base: str, max_rank: int) -> None:
    """``ConfigurationError`` unless ``path`` is a PEFT LoRA adapter that fits the model in ``base``: its
    rank within ``max_rank`` and, where the base model is a local folder, every adapted layer present there
    with the shapes the adapter expects."""
    config_file = path / "adapter_config.json"
    if not config_file.is_file():
        raise ConfigurationError(
            f"the LoRA adapter {name!r} is not a PEFT adapter folder: {str(config_file)!r} does not exist"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"the LoRA adapter {name!r} has an unreadable adapter_config.json: {exc}"
        ) from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise ConfigurationError(f"the adapter {name!r} is a {config.get('peft_type')} adapter, not LoRA")
    rank = int(config.get("r", 0))
    if rank > max_rank:
        raise ConfigurationError(
            f"the LoRA adapter {name!r} has rank {rank}, above the engine's max_lora_rank {max_rank} "
            "(raise MINDFU_LLM__MAX_LORA_RANK)"
        )
    adapter = _tensor_shapes(path, "adapter_model")
    if not adapter:
        raise ConfigurationError(f"the LoRA adapter {name!r} has no adapter_model.safetensors in {path}")
    base_dir = Path(base)
    if not base_dir.is_dir():
        return  # a hub id: vLLM's own loading checks it at registration
    weights = _tensor_shapes(base_dir, "model")
    if not weights:
        return
    for key, shape in sorted(adapter.items()):
        for part, axis in ((".lora_A.weight", 1), (".lora_B.weight", 0)):
            if not key.endswith(part):
                continue
            module = key.removeprefix("base_model.model.").removesuffix(part)
            found = weights.get(f"{module}.weight")
            if found is None:
                raise ConfigurationError(
                    f"the LoRA adapter {name!r} adapts {module!r}, which the model {base!r} does not have "
                    "(an adapter of another base model)"
                )
            if len(shape) != 2 or len(found) != 2 or shape[axis] != found[axis]:
                raise ConfigurationError(
                    f"the LoRA adapter {name!r} does not fit the model {base!r}: {key} is {shape}, the "
                    f"layer is {found} (an adapter of another base model)"
                )


async def load_lora(engine: Any, name: str, lora_id: int, path: Path, model_id: str) -> None:
    """Load a LoRA adapter into a running vLLM engine under ``lora_id``; ``ConfigurationError`` if refused."""
    from vllm.lora.request import LoRARequest

    try:
        loaded = await engine.add_lora(LoRARequest(name, lora_id, str(path)))
    except Exception as exc:  # vLLM raises a bare Exception naming the worker's error
        raise ConfigurationError(
            f"vLLM refused the LoRA adapter {name!r} ({str(path)!r}) for {model_id!r}: {exc}"
        ) from exc
    if loaded is False:
        raise ConfigurationError(f"vLLM did not load the LoRA adapter {name!r} ({str(path)!r})")
