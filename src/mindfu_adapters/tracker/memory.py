"""An ExperimentTracker held in this process (for library users without MLflow, and for tests)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindfu_core.errors import NotFound


@dataclass
class _Run:
    experiment: str
    name: str | None
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    status: str = "RUNNING"


class InMemoryTracker:
    """Runs kept in a dict; artifacts are copied under ``artifact_root`` when one is given."""

    def __init__(self, artifact_root: Path | None = None) -> None:
        self.runs: dict[str, _Run] = {}
        self._root = artifact_root

    def _run(self, run_id: str) -> _Run:
        try:
            return self.runs[run_id]
        except KeyError:
            raise NotFound(f"no tracking run {run_id!r}") from None

    def start_run(
        self, experiment: str, *, run_name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        run_id = uuid.uuid4().hex
        self.runs[run_id] = _Run(experiment=experiment, name=run_name, tags=dict(tags or {}))
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self._run(run_id).params.update({key: str(value) for key, value in params.items()})

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        run = self._run(run_id)
        for key, value in metrics.items():
            run.metrics.setdefault(key, []).append((step, float(value)))

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        run = self._run(run_id)
        source = Path(local_dir)
        files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
        prefix = f"{artifact_path}/" if artifact_path else ""
        run.artifacts.extend(prefix + name for name in files)
        if self._root is not None:
            shutil.copytree(source, self._root / run_id / (artifact_path or ""), dirs_exist_ok=True)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._run(run_id).status = status

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return sorted(self._run(run_id).metrics.get(key, []))
