"""The training worker: ``python -m mindfu_adapters.jobs.worker JOB_DIR`` trains one job in its own
process (a crash or out-of-memory never reaches the server), tracked in MLflow.

It reads ``job.json`` and ``dataset/*.jsonl`` from the job folder, appends what happens to
``events.jsonl`` (progress, metrics, messages, the MLflow run id), stops after the current step once a
``cancel`` file appears, and ends by writing ``outcome.json`` (or ``error.txt`` and exit status 1).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from mindfu_core.domain.training import Hyperparameters, Progress
from mindfu_core.errors import MindFuError
from mindfu_core.ports.trainer import TrainingRequest
from mindfu_core.services.dataset import read_chat_jsonl

JOB, EVENTS, CANCEL, OUTCOME, ERROR = "job.json", "events.jsonl", "cancel", "outcome.json", "error.txt"


class Reporter:
    """TrainingCallbacks that append to ``events.jsonl`` and log metrics to the tracker."""

    def __init__(self, folder: Path, out: TextIO, tracker: Any, run_id: str) -> None:
        self._folder = folder
        self._out = out
        self._tracker = tracker
        self._run_id = run_id

    def emit(self, **event: Any) -> None:
        self._out.write(json.dumps(event) + "\n")
        self._out.flush()

    def on_progress(self, progress: Progress) -> None:
        self.emit(type="progress", **asdict(progress))

    def on_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._tracker.log_metrics(self._run_id, metrics, step=step)
        self.emit(type="metrics", step=step, metrics=dict(metrics))

    def should_stop(self) -> bool:
        return (self._folder / CANCEL).exists()


def _examples(path: Path) -> list[Any]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return list(read_chat_jsonl(lines))


def _vllm_manifest(folder: Path, spec: dict[str, Any], artifacts: dict[str, str]) -> str:
    """How vLLM serves the result: the merged model under the tuned name, or the base with the adapter."""
    name = spec.get("served_name") or spec["job_id"]
    api = "python -m vllm.entrypoints.openai.api_server"
    manifest = {
        "served_model_name": name,
        "merged": {
            "model": artifacts["merged"],
            "command": f"{api} --model {artifacts['merged']} --served-model-name {name}",
        },
        "lora": {
            "base_model": spec["base_model"],
            "adapter": artifacts["adapter"],
            "command": f"{api} --model {spec['base_model']} --enable-lora "
            f"--lora-modules {name}={artifacts['adapter']}",
        },
    }
    if "awq" in artifacts:
        manifest["awq"] = {
            "model": artifacts["awq"],
            # quantized on the CPU: vLLM's CPU kernel for it has no float32 path
            "command": f"{api} --model {artifacts['awq']} --served-model-name {name}"
            + (" --dtype bfloat16" if (spec.get("awq") or {}).get("device") == "cpu" else ""),
        }
    path = folder / "vllm.json"
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return str(path)


def _model_card(
    spec: dict[str, Any],
    kind: str,
    artifacts: Mapping[str, str],
    hyperparameters: Hyperparameters,
    final: Mapping[str, float],
    steps: int,
) -> None:
    """A hub-ready card in the adapter or merged folder (``huggingface-cli upload`` takes it as it is)."""
    from mindfu_adapters.export.model_card import CardFacts, write_model_card

    dtype = spec.get("merge_dtype") or "auto"
    facts = CardFacts(
        name=spec.get("served_name") or spec["job_id"],
        base_model=spec["model"],
        base_path=spec["base_model"],
        hyperparameters=asdict(hyperparameters),
        dataset=spec.get("stats") or {},
        perplexity=final.get("perplexity"),
        base_perplexity=final.get("base_perplexity"),
        steps=steps,
        kind=kind,
        dtype=None if dtype == "auto" else dtype,
    )
    write_model_card(Path(artifacts[kind]), facts)


def run(folder: Path) -> int:
    from mindfu_adapters.tracker.mlflow import MlflowTracker
    from mindfu_adapters.trainer.qlora import QloraTrainer

    spec = json.loads((folder / JOB).read_text(encoding="utf-8"))
    tracker = MlflowTracker(spec["tracking_uri"], artifact_root=Path(spec["artifact_root"]))
    with (folder / EVENTS).open("a", encoding="utf-8") as out:
        run_id = spec.get("mlflow_run_id") or tracker.start_run(
            spec["experiment"],
            run_name=spec["job_id"],
            tags={"mindfu.job_id": spec["job_id"], "mindfu.base_model": spec["model"]},
        )
        reporter = Reporter(folder, out, tracker, run_id)
        reporter.emit(type="mlflow", run_id=run_id)
        hyperparameters = Hyperparameters(**spec["hyperparameters"])
        if not spec.get("mlflow_run_id"):
            stats = {
                f"dataset_{k}": v for k, v in (spec.get("stats") or {}).items() if not isinstance(v, dict)
            }
            tracker.log_params(run_id, {**asdict(hyperparameters), "base_model": spec["model"], **stats})
        from transformers.trainer_utils import get_last_checkpoint

        output = folder / "output"
        last = get_last_checkpoint(str(output)) if output.exists() else None
        if last is not None:
            reporter.emit(type="message", level="info", message=f"Resuming from {Path(last).name}")
        trainer = QloraTrainer()
        request = TrainingRequest(
            base_model=spec["base_model"],
            output_dir=str(output),
            train=_examples(folder / "dataset" / "train.jsonl"),
            validation=_examples(folder / "dataset" / "validation.jsonl"),
            hyperparameters=hyperparameters,
        )
        try:
            outcome = trainer.train(request, reporter)
        except BaseException:
            tracker.end_run(run_id, "FAILED")
            raise
        if reporter.should_stop():
            reporter.emit(type="message", level="info", message=f"Stopped at step {outcome.steps} on request")
            (folder / OUTCOME).write_text(
                json.dumps({"cancelled": True, "steps": outcome.steps}), encoding="utf-8"
            )
            tracker.end_run(run_id, "KILLED")
            return 0
        final: dict[str, float] = {}
        if outcome.eval_loss is not None:
            final["perplexity"] = math.exp(min(outcome.eval_loss, 50.0))
        if outcome.base_eval_loss is not None:
            final["base_perplexity"] = math.exp(min(outcome.base_eval_loss, 50.0))
        artifacts = {"adapter": outcome.adapter_dir}
        _model_card(spec, "adapter", artifacts, hyperparameters, final, outcome.steps)
        tracker.log_artifacts(run_id, outcome.adapter_dir, "adapter")
        if spec.get("merge", True):
            reporter.emit(type="message", level="info", message="Merging the adapter into the base model")
            artifacts["merged"] = trainer.merge(
                spec["base_model"],
                outcome.adapter_dir,
                str(folder / "merged"),
                dtype=spec.get("merge_dtype") or "auto",
            )
            _model_card(spec, "merged", artifacts, hyperparameters, final, outcome.steps)
        if spec.get("gguf") and "merged" in artifacts:
            from mindfu_adapters.export.gguf import export_gguf

            reporter.emit(
                type="message", level="info", message=f"Exporting GGUF ({spec['gguf']}) for llama.cpp"
            )
            gguf = export_gguf(
                Path(artifacts["merged"]),
                folder / "model.gguf",
                tools=Path(spec["tools"]),
                outtype=spec["gguf"],
            )
            artifacts["gguf"] = str(gguf)
        if spec.get("lora_gguf") and spec.get("tools"):
            from mindfu_adapters.export.gguf import export_lora_gguf

            reporter.emit(type="message", level="info", message="Converting the adapter to a LoRA GGUF")
            try:
                lora = export_lora_gguf(
                    Path(outcome.adapter_dir),
                    Path(spec["base_model"]),
                    folder / "adapter.gguf",
                    tools=Path(spec["tools"]),
                    outtype="f16",
                )
            except MindFuError as error:  # an extra way to serve the model: its absence fails nothing
                reporter.emit(type="message", level="warn", message=f"No LoRA GGUF: {error.message}")
            else:
                artifacts["lora_gguf"] = str(lora)
        if spec.get("awq") and "merged" in artifacts:
            from transformers import AutoTokenizer

            from mindfu_adapters.export.awq import AwqExport
            from mindfu_adapters.trainer.formatting import render

            awq = AwqExport(**spec["awq"])
            reporter.emit(
                type="message", level="info", message=f"Quantizing with AWQ for vLLM ({awq.device})"
            )
            tokenizer = AutoTokenizer.from_pretrained(artifacts["merged"])
            texts = [render(example, tokenizer) for example in request.train]
            artifacts["awq"] = str(awq.export(Path(artifacts["merged"]), folder / "awq", texts))
        if "merged" in artifacts:
            artifacts["vllm"] = _vllm_manifest(folder, spec, artifacts)
        if final:
            tracker.log_metrics(run_id, final, step=outcome.steps)
        tracker.end_run(run_id, "FINISHED")
        body = {"outcome": {**asdict(outcome), "notes": list(outcome.notes)}, "artifacts": artifacts}
        (folder / OUTCOME).write_text(json.dumps(body), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0])
    logging.basicConfig(
        level=os.environ.get("MINDFU_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return run(folder)
    except MindFuError as error:
        (folder / ERROR).write_text(error.message, encoding="utf-8")
    except BaseException as error:
        traceback.print_exc()
        (folder / ERROR).write_text(f"{type(error).__name__}: {error}", encoding="utf-8")
    return 1


if __name__ == "__main__":
    sys.exit(main())
