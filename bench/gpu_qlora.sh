#!/usr/bin/env bash
# bench/qlora.py on a GPU machine that has torch, transformers, peft and accelerate but lacks the rest of
# MindFu's training stack and any network. Run from the repository root with two git-ignored folders beside
# it, both made on a machine with network access:
#
#   .whl/           wheels of what the GPU machine lacks, installed here with --no-deps into /tmp/site:
#                   bitsandbytes, trl, datasets, dill, multiprocess (nothing the machine already has, so
#                   its own torch, transformers, numpy, ... stay in force)
#   .gpu/tokenizer  SmolLM2's tokenizer files (tokenizer.json, tokenizer_config.json, chat_template.jinja)
#                   from the HF folder `mindfu models prepare` writes; no weights
#
# Results go to $OUT (versions.txt, qlora.log, qlora-gpu.json), or to /tmp/qlora-gpu-out where OUT is unset.
# STEPS, ROUNDS and OPTIMIZER override the run (defaults: 12, 2, paged_adamw_8bit). Should bitsandbytes'
# paged (CUDA managed memory) optimizer fail its check here, both sides run adamw_8bit instead, and the
# log says so.
set -euo pipefail

OUT="${OUT:-/tmp/qlora-gpu-out}"
STEPS="${STEPS:-12}"
ROUNDS="${ROUNDS:-2}"
OPTIMIZER="${OPTIMIZER:-paged_adamw_8bit}"
mkdir -p "$OUT"

for needed in .whl .gpu/tokenizer/tokenizer.json; do
    [ -e "$needed" ] || { echo "missing $needed (carry it along)" >&2; exit 2; }
done

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# no network there: never wait on the hub
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

nvidia-smi -L || true

# Versions and the import chain; the bitsandbytes native library on this GPU (NF4 round trip). Fails fast.
timeout 180 python3 - <<'EOF' 2>&1 | tee "$OUT/versions.txt"
import importlib.metadata as md
import sys

print("python", sys.version.split()[0])
for name in ("torch", "transformers", "peft", "accelerate", "trl", "bitsandbytes", "datasets",
             "pyarrow", "fsspec", "pandas", "numpy", "huggingface-hub", "tokenizers", "safetensors"):
    try:
        print(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name} MISSING")

import torch
import bitsandbytes.functional as F

print("cuda", torch.version.cuda, torch.cuda.get_device_name(0))
x = torch.randn(256, 256, device="cuda", dtype=torch.bfloat16)
q, state = F.quantize_4bit(x, quant_type="nf4", compress_statistics=True)
error = (F.dequantize_4bit(q, state) - x).abs().mean().item()
print(f"bitsandbytes NF4 round trip ok (mean abs error {error:.4f})")
import datasets  # noqa: F401
import trl  # noqa: F401
from mindfu_adapters.trainer.qlora import QloraTrainer  # noqa: F401

print("imports ok")
EOF

# The paged optimizer keeps its state in CUDA managed memory: one small step of it, bounded in time.
if [ "$OPTIMIZER" = paged_adamw_8bit ]; then
    if ! timeout 120 python3 - <<'EOF' 2>&1 | tee -a "$OUT/versions.txt"; then
import torch
import bitsandbytes as bnb

weight = torch.nn.Parameter(torch.randn(4096, 64, device="cuda"))
optimizer = bnb.optim.PagedAdamW8bit([weight], lr=1e-3)
weight.grad = torch.randn_like(weight)
optimizer.step()
torch.cuda.synchronize()
print("paged_adamw_8bit step ok")
EOF
        echo "NOTE: paged_adamw_8bit failed its check here; both sides run adamw_8bit" | tee -a "$OUT/versions.txt"
        OPTIMIZER=adamw_8bit
    fi
fi

python3 bench/qlora.py --size 1b --steps "$STEPS" --rounds "$ROUNDS" --optimizer "$OPTIMIZER" \
    --tokenizer .gpu/tokenizer --json "$OUT/qlora-gpu.json" 2>&1 | tee "$OUT/qlora.log"
