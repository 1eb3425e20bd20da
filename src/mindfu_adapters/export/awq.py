"""AWQ (4-bit weights, 16-bit activations) of a tuned model for vLLM, with llm-compressor on a CUDA GPU.

Where there is no GPU or no llm-compressor, ``check_awq`` says so before a job trains, so nothing is
half-done; the export itself writes to a ``.partial`` folder and renames it when complete.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Sequence
from pathlib import Path

from mindfu_core.errors import InvalidRequest

SCHEME = "W4A16_ASYM"


def check_awq() -> None:
    """``InvalidRequest`` naming what is missing when this machine cannot produce AWQ."""
    import torch

    if not torch.cuda.is_available():
        raise InvalidRequest(
            "AWQ export needs a CUDA GPU and this machine has none (MINDFU_TRAINING__EXPORT_AWQ)",
            param="export_awq",
        )
    if importlib.util.find_spec("llmcompressor") is None:
        raise InvalidRequest(
            "AWQ export needs llm-compressor (`pip install llmcompressor`) (MINDFU_TRAINING__EXPORT_AWQ)",
            param="export_awq",
        )


def export_awq(
    model_dir: Path, out_dir: Path, calibration: Sequence[str], *, max_seq_length: int = 2048
) -> Path:
    """Quantize the merged model with AWQ, calibrated on the job's own training texts."""
    check_awq()
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.awq import AWQModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float16, device_map="auto")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = Dataset.from_list([{"text": text} for text in calibration])
    recipe = [AWQModifier(ignore=["lm_head"], scheme=SCHEME, targets=["Linear"])]
    oneshot(
        model=model,
        dataset=texts,
        recipe=recipe,
        max_seq_length=max_seq_length,
        num_calibration_samples=min(len(texts), 256),
    )
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, save_compressed=True)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.replace(out_dir)
    return out_dir
