"""Trainable weights of a served GGUF model: transformers dequantizes it into a Hugging Face folder.

``mindfu models prepare`` does this for the served model (the embedded SmolLM2 by default), so a fresh
clone can fine-tune it; the folder is ``<data_dir>/models/<model id>-hf``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mindfu_core.errors import ConfigurationError

MARKER = "mindfu-trainable.json"


def trainable_dir(data_dir: Path, model_id: str) -> Path:
    return data_dir / "models" / f"{model_id}-hf"


def find_trainable(data_dir: Path, model_id: str) -> Path | None:
    """The prepared folder of ``data_dir``, else the default data directory's (the same bytes)."""
    from mindfu_adapters.settings import default_data_dir

    for root in (data_dir, default_data_dir()):
        folder = trainable_dir(root, model_id)
        if (folder / MARKER).exists():
            return folder
    return None


def gguf_to_hf(gguf_path: Path, out_dir: Path, *, force: bool = False) -> Path:
    """Dequantize ``gguf_path`` into a Hugging Face model folder (float32 SafeTensors and tokenizer)."""
    if (out_dir / MARKER).exists() and not force:
        return out_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf_path.is_file():
        raise ConfigurationError(f"no GGUF model at {gguf_path} (MINDFU_LLM__MODEL_PATH)")
    folder, name = gguf_path.parent, gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigurationError(f"transformers cannot read {gguf_path} for training: {error}") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):  # transformers refuses to save a model it thinks is quantized
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    (partial / MARKER).write_text(f'{{"source": "{gguf_path.name}"}}\n', encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.replace(out_dir)
    return out_dir
