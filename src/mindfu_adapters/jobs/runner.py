"""SubprocessTrainingRunner: each job trains in ``python -m mindfu_adapters.jobs.worker`` with its own
folder (``<training dir>/<job id>``: dataset, checkpoints, adapter, merged model, events, worker log)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mindfu_adapters.export.awq import AwqExport
from mindfu_adapters.jobs.worker import CANCEL, ERROR, EVENTS, JOB, OUTCOME
from mindfu_core.domain.examples import openai_message
from mindfu_core.domain.training import ChatExample, Checkpoint, Progress, TrainingJob, TrainingOutcome
from mindfu_core.errors import EngineFailure, NotFound
from mindfu_core.ports.training_runner import RunnerUpdate, RunResult
from mindfu_core.services.training_record import fine_tuned_name

POLL_S = 0.5
#: How long a stopping server waits for a running worker to checkpoint.
SHUTDOWN_GRACE_S = 30.0


def _line(example: ChatExample) -> str:
    body: dict[str, Any] = {"messages": [openai_message(m) for m in example.messages]}
    if example.tools:
        body["tools"] = [dict(t) for t in example.tools]
    return json.dumps(body, ensure_ascii=False)


def _read_from(path: Path, offset: int) -> bytes:
    """What was appended to ``path`` after ``offset`` (a few lines between polls)."""
    if not path.exists():
        return b""
    with path.open("rb") as source:
        source.seek(offset)
        return source.read()


def _write_atomic(path: Path, lines: Sequence[str]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)


class SubprocessTrainingRunner:
    """The TrainingRunner port: one worker process per job, watched through its ``events.jsonl``."""

    def __init__(
        self,
        root: Path,
        *,
        base_models: Mapping[str, Path],
        tracking_uri: str,
        artifact_root: Path,
        experiment: str = "mindfu-finetune",
        cancel_grace_s: float = 300.0,
        merge: bool = True,
        merge_dtype: str = "auto",
        gguf: str | None = None,
        tools: Path | None = None,
        awq: AwqExport | None = None,
        lora_gguf: bool = False,
    ) -> None:
        self._root = root
        self._base_models = dict(base_models)
        self._tracking_uri = tracking_uri
        self._artifact_root = artifact_root
        self._experiment = experiment
        self._grace = cancel_grace_s
        self._merge = merge
        self._merge_dtype = merge_dtype
        self._gguf = gguf or None
        self._tools = tools
        self._awq = awq
        self._lora_gguf = lora_gguf
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    def folder(self, job_id: str) -> Path:
        return self._root / job_id

    def base_model_path(self, model: str) -> str:
        path = self._base_models.get(model)
        if path is None:
            known = ", ".join(sorted(self._base_models)) or "none"
            raise NotFound(
                f"The model '{model}' cannot be fine-tuned here: no trainable weights are configured for it "
                f"(run `mindfu models prepare` for the served model, or set MINDFU_TRAINING__BASE_MODELS; "
                f"configured: {known})",
                param="model",
                code="model_not_found",
            )
        if not (path / "config.json").exists():
            raise NotFound(
                f"the trainable weights of '{model}' are missing: {path} has no config.json", param="model"
            )
        if self._awq is not None:  # before anything trains: a format this setup cannot produce is refused now
            self._awq.check(path)
        return str(path)

    def has_dataset(self, job_id: str) -> bool:
        return (self.folder(job_id) / "dataset" / "train.jsonl").exists()

    def store_dataset(
        self, job_id: str, train: Sequence[ChatExample], validation: Sequence[ChatExample]
    ) -> None:
        folder = self.folder(job_id) / "dataset"
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / "validation.jsonl", [_line(e) for e in validation])
        _write_atomic(folder / "train.jsonl", [_line(e) for e in train])  # last: its presence means done

    def cancel(self, job_id: str) -> None:
        folder = self.folder(job_id)
        if folder.exists():
            (folder / CANCEL).touch()

    def checkpoints(self, job_id: str) -> list[Checkpoint]:
        found = []
        for path in (self.folder(job_id) / "output").glob("checkpoint-*"):
            step = int(path.name.rsplit("-", 1)[1])
            metrics: dict[str, Any] = {}
            state = path / "trainer_state.json"
            if state.exists():
                history = json.loads(state.read_text(encoding="utf-8")).get("log_history", [])
                for entry in history:
                    metrics.update({k: v for k, v in entry.items() if k in ("loss", "eval_loss", "epoch")})
            found.append(Checkpoint(step=step, path=str(path), metrics=metrics))
        return sorted(found, key=lambda c: -c.step)

    async def run(self, job: TrainingJob, report: Callable[[RunnerUpdate], Awaitable[None]]) -> RunResult:
        folder = self.folder(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (CANCEL, OUTCOME, ERROR):
            (folder / stale).unlink(missing_ok=True)
        spec = {
            "job_id": job.id,
            "model": job.spec.base_model,
            "base_model": self.base_model_path(job.spec.base_model),
            "hyperparameters": asdict(job.spec.hyperparameters),
            "tracking_uri": self._tracking_uri,
            "artifact_root": str(self._artifact_root),
            "experiment": job.spec.experiment or self._experiment,
            "mlflow_run_id": job.tracking_run_id,
            "stats": job.stats.as_dict() if job.stats else None,
            "merge": self._merge or bool(self._gguf) or self._awq is not None,
            "merge_dtype": self._merge_dtype,
            "gguf": self._gguf,
            "awq": asdict(self._awq) if self._awq is not None else None,
            "lora_gguf": self._lora_gguf,
            "served_name": fine_tuned_name(job),
            "tools": str(self._tools) if self._tools else None,
        }
        (folder / JOB).write_text(json.dumps(spec), encoding="utf-8")
        events = folder / EVENTS
        offset = events.stat().st_size if events.exists() else 0
        with (folder / "worker.log").open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mindfu_adapters.jobs.worker", str(folder), stdout=log, stderr=log
            )
        self._processes[job.id] = process
        loop = asyncio.get_running_loop()
        cancel_seen: float | None = None
        try:
            while process.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), POLL_S)
                offset = await self._relay(events, offset, report)
                if cancel_seen is None and (folder / CANCEL).exists():
                    cancel_seen = loop.time()
                if (
                    cancel_seen is not None
                    and loop.time() - cancel_seen > self._grace
                    and process.returncode is None
                ):
                    process.kill()  # it did not stop within the grace period
                    await process.wait()
            await self._relay(events, offset, report)
        except asyncio.CancelledError:  # the server stops: the worker checkpoints and stops, or is killed
            (folder / CANCEL).touch()
            with contextlib.suppress(Exception):
                await asyncio.shield(self._wait_or_kill(process, SHUTDOWN_GRACE_S))
            raise
        finally:
            self._processes.pop(job.id, None)
        return self._result(folder, process.returncode)

    @staticmethod
    async def _wait_or_kill(process: asyncio.subprocess.Process, grace: float) -> None:
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _relay(
        self, events: Path, offset: int, report: Callable[[RunnerUpdate], Awaitable[None]]
    ) -> int:
        data = _read_from(events, offset)
        complete = data[: data.rfind(b"\n") + 1]
        for raw in complete.splitlines():
            event = json.loads(raw)
            kind = event.pop("type")
            if kind == "progress":
                await report(RunnerUpdate(progress=Progress(**event)))
            elif kind == "metrics":
                await report(RunnerUpdate(metrics=event["metrics"], step=event["step"]))
            elif kind == "mlflow":
                await report(RunnerUpdate(tracking_run_id=event["run_id"]))
            elif kind == "message":
                await report(RunnerUpdate(message=event["message"], level=event.get("level", "info")))
        return offset + len(complete)

    def _result(self, folder: Path, returncode: int | None) -> RunResult:
        outcome_file = folder / OUTCOME
        if returncode == 0 and outcome_file.exists():
            body = json.loads(outcome_file.read_text(encoding="utf-8"))
            if body.get("cancelled"):
                return RunResult(cancelled=True)
            values = body["outcome"]
            values["notes"] = tuple(values.get("notes") or ())
            return RunResult(outcome=TrainingOutcome(**values), artifacts=body.get("artifacts", {}))
        if (folder / CANCEL).exists() and not (folder / ERROR).exists():
            return RunResult(cancelled=True)
        reason = (folder / ERROR).read_text(encoding="utf-8") if (folder / ERROR).exists() else None
        if reason is None:
            reason = f"the training worker exited with status {returncode} (see {folder / 'worker.log'})"
        raise EngineFailure(reason)
