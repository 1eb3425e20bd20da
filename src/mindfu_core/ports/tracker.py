"""The ExperimentTracker port: runs with parameters, metrics by step, and artifacts.

Synchronous on purpose: it is called from inside a training loop (a worker process, not the event loop).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class ExperimentTracker(Protocol):
    """Records training runs for comparison (a tracking server in production, memory in tests)."""

    def start_run(
        self, experiment: str, *, run_name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        """Open a run in ``experiment`` (created when missing); returns the run id."""
        ...

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Record parameters (values are stored as text)."""
        ...

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        """Record metric values at ``step``."""
        ...

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Copy the files under ``local_dir`` into the run's artifacts (under ``artifact_path``)."""
        ...

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Close the run: ``FINISHED``, ``FAILED`` or ``KILLED``."""
        ...

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """Every ``(step, value)`` logged for ``key``, by step."""
        ...
