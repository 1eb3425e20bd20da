"""AWQ quantization of a Hugging Face model folder with llm-compressor, run as a script by ``export_awq``.

It runs in the interpreter ``MINDFU_TRAINING__AWQ_PYTHON`` names, an environment of its own when needed:
llm-compressor pins compressed-tensors and transformers to versions vLLM's own pins exclude, so the two
cannot share one. It therefore imports nothing of MindFu: only torch, transformers, datasets and
llm-compressor.

    python awq_worker.py MODEL_DIR OUT_DIR CALIBRATION.jsonl --device cuda|cpu [--max-seq-length N]

CALIBRATION.jsonl holds one ``{"text": ...}`` per line. The output is a compressed-tensors checkpoint
(W4A16, asymmetric, groups of 128; ``lm_head`` left dense) that vLLM loads as it is. Exit status 2 with a
one-line reason on standard error when the input cannot be quantized.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

SCHEME = "W4A16_ASYM"
MAX_SAMPLES = 256


def _recipe() -> list[Any]:
    try:  # llm-compressor 0.14: AWQ smooths, a quantization modifier then quantizes
        from llmcompressor.modifiers.quantization import QuantizationModifier
        from llmcompressor.modifiers.transform.awq import AWQModifier

        return [AWQModifier(), QuantizationModifier(ignore=["lm_head"], scheme=SCHEME, targets=["Linear"])]
    except ImportError:  # earlier releases: one modifier does both
        from llmcompressor.modifiers.awq import AWQModifier as Legacy

        return [Legacy(ignore=["lm_head"], scheme=SCHEME, targets=["Linear"])]


def _without_pinned_memory() -> None:
    """llm-compressor 0.14 pins its cached activations unconditionally, and pinning needs an accelerator:
    on a machine without one, the cache stays in ordinary memory."""
    from llmcompressor.pipelines.cache import IntermediatesCache

    def unpinned(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    IntermediatesCache.pin_memory = unpinned


def quantize(model_dir: Path, out_dir: Path, texts: list[str], *, device: str, max_seq_length: int) -> None:
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("AWQ on cuda: this interpreter's torch sees no CUDA GPU")
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float16, device_map="auto")
    else:  # bfloat16 is the fastest of the three dtypes on CPU, and what vLLM serves the result in there
        if not torch.accelerator.is_available():
            _without_pinned_memory()
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    samples = min(len(texts), MAX_SAMPLES)
    started = time.monotonic()
    oneshot(
        model=model,
        tokenizer=tokenizer,
        dataset=Dataset.from_dict({"text": texts[:samples]}),
        recipe=_recipe(),
        max_seq_length=max_seq_length,
        num_calibration_samples=samples,
    )
    print(f"AWQ calibrated on {samples} texts in {time.monotonic() - started:.1f} s", file=sys.stderr)
    model.save_pretrained(out_dir, save_compressed=True)
    tokenizer.save_pretrained(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("calibration", type=Path)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--max-seq-length", type=int, default=2048)
    args = parser.parse_args(argv)
    lines = args.calibration.read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    if not texts:
        print("no calibration texts", file=sys.stderr)
        return 2
    quantize(args.model_dir, args.out_dir, texts, device=args.device, max_seq_length=args.max_seq_length)
    return 0


if __name__ == "__main__":
    sys.exit(main())
