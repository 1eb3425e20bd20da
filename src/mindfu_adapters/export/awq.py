"""AWQ (4-bit weights, 16-bit activations) of a tuned model for vLLM, with llm-compressor.

The quantization runs ``awq_worker.py`` in the interpreter ``AwqExport.python`` names: this one by
default, or an environment of its own (``make awq-env`` builds ``.venv-awq``), since llm-compressor and
vLLM pin compressed-tensors differently and cannot share an environment. ``check`` says before a job
trains what would stop the export (no CUDA GPU for ``device="cuda"``, no llm-compressor in that
interpreter, a model whose layer widths are not whole groups), so nothing is half-done; the export itself
writes to a ``.partial`` folder and renames it when complete.

On CPU (``device="cpu"``) it is slow but real: small models, and the tests, quantize there; vLLM on CPU
serves the result in bfloat16 or float16 (its CPU kernel has no float32 path).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mindfu_core.errors import EngineFailure, InvalidRequest

WORKER = Path(__file__).with_name("awq_worker.py")
GROUP_SIZE = 128  # W4A16 quantizes each row of a layer in groups of this many input features
# the config entries whose values are the input widths of a decoder's linear layers
WIDTHS = ("hidden_size", "intermediate_size")
# interpreters found to have llm-compressor (asked once per process: a job's creation should not wait on a
# Python start-up every time)
_EQUIPPED: set[str] = set()


@dataclass(frozen=True, slots=True)
class AwqExport:
    """Where and how to quantize: the interpreter with llm-compressor, and the device it runs on."""

    python: str = sys.executable
    device: Literal["cuda", "cpu"] = "cuda"

    def check(self, model_dir: Path | None = None) -> None:
        """``InvalidRequest`` naming what is missing when this setup cannot produce AWQ (of that model)."""
        if self.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise InvalidRequest(
                    "AWQ export needs a CUDA GPU and this machine has none (MINDFU_TRAINING__EXPORT_AWQ; "
                    "MINDFU_TRAINING__AWQ_DEVICE=cpu quantizes small models on the CPU)",
                    param="export_awq",
                )
        if self.python not in _EQUIPPED:
            self._probe()
            _EQUIPPED.add(self.python)
        if model_dir is not None:
            check_widths(model_dir)

    def _probe(self) -> None:
        probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('llmcompressor') is None)"
        try:
            found = subprocess.run([self.python, "-c", probe], capture_output=True, timeout=60).returncode
        except (OSError, subprocess.TimeoutExpired) as error:
            raise InvalidRequest(
                f"AWQ export: the interpreter {self.python} cannot run ({error}) "
                "(MINDFU_TRAINING__AWQ_PYTHON)",
                param="export_awq",
            ) from None
        if found != 0:
            raise InvalidRequest(
                f"AWQ export needs llm-compressor in {self.python} (`make awq-env` builds an environment "
                "with it; point MINDFU_TRAINING__AWQ_PYTHON at its python) (MINDFU_TRAINING__EXPORT_AWQ)",
                param="export_awq",
            )

    def export(
        self, model_dir: Path, out_dir: Path, calibration: Sequence[str], *, max_seq_length: int = 2048
    ) -> Path:
        """Quantize the model in ``model_dir`` into ``out_dir``, calibrated on ``calibration`` (the job's own
        training texts); ``EngineFailure`` with llm-compressor's reason when it fails."""
        check_widths(model_dir)
        partial = out_dir.with_name(out_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix="awq-") as scratch:
            texts = Path(scratch) / "calibration.jsonl"
            texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in calibration), encoding="utf-8")
            done = subprocess.run(
                [
                    self.python, str(WORKER), str(model_dir), str(partial), str(texts),
                    "--device", self.device, "--max-seq-length", str(max_seq_length),
                ],
                capture_output=True,
                text=True,
                # the worker's interpreter has its own packages: nothing of this one's path leaks in
                env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")},
            )  # fmt: skip
        if done.returncode != 0 or not (partial / "config.json").exists():
            shutil.rmtree(partial, ignore_errors=True)
            raise EngineFailure(f"AWQ quantization of {model_dir} failed: {done.stderr.strip()[-800:]}")
        shutil.rmtree(out_dir, ignore_errors=True)
        partial.replace(out_dir)
        return out_dir


def check_widths(model_dir: Path) -> None:
    """``InvalidRequest`` when a linear layer's input width is not a whole number of quantization groups."""
    config_file = model_dir / "config.json"
    if not config_file.exists():
        return  # the base model's own check reports a missing folder
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config = config.get("text_config", config)  # multimodal configs keep the decoder's below
    uneven = {key: config[key] for key in WIDTHS if isinstance(config.get(key), int)}
    uneven = {key: width for key, width in uneven.items() if width % GROUP_SIZE}
    if uneven:
        widths = ", ".join(f"{key} {width}" for key, width in uneven.items())
        raise InvalidRequest(
            f"AWQ export quantizes in groups of {GROUP_SIZE} input features, and this model's layers are "
            f"not whole groups ({widths}) (MINDFU_TRAINING__EXPORT_AWQ)",
            param="export_awq",
        )
