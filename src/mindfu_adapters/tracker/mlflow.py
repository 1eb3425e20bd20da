"""MlflowTracker: runs in MLflow, through an explicit ``MlflowClient`` (no process-global active run).

The default tracking store is SQLite in the data directory, artifacts in a folder beside it. With a server
URL (``http://mlflow:5000``, the compose training profile) the server stores artifacts: started with
``--serve-artifacts``, they go through it, so its UI and any client read them back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mindfu_core.errors import NotFound, UpstreamUnavailable

#: MLflow refuses longer parameter values.
MAX_PARAM_CHARS = 6000


class MlflowTracker:
    """The ExperimentTracker port on MLflow."""

    def __init__(self, tracking_uri: str, *, artifact_root: Path | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self._artifact_root = artifact_root
        self._client = MlflowClient(tracking_uri=tracking_uri)

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        # a tracking server decides where artifacts go (``--serve-artifacts``: through the server, which the
        # UI on :5000 can show); a local folder of this machine is only right for a local store
        served = self.tracking_uri.startswith(("http://", "https://"))
        root = None if served else self._artifact_root
        location = (root / name).as_uri() if root is not None else None
        try:
            return str(self._client.create_experiment(name, artifact_location=location))
        except MlflowException:  # created meanwhile by another process
            again = self._client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

    def start_run(
        self, experiment: str, *, run_name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> str:
        from mlflow.exceptions import MlflowException

        try:
            run = self._client.create_run(
                self._experiment_id(experiment), run_name=run_name, tags=dict(tags or {})
            )
        except MlflowException as error:
            raise UpstreamUnavailable(f"MLflow at {self.tracking_uri} refused the run: {error}") from None
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        entries = [Param(key, str(value)[:MAX_PARAM_CHARS]) for key, value in params.items()]
        for start in range(0, len(entries), 100):  # MLflow's batch limit
            self._client.log_batch(run_id, params=entries[start : start + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        entries = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        if entries:
            self._client.log_batch(run_id, metrics=entries)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        self._client.log_artifacts(run_id, local_dir, artifact_path)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._client.set_terminated(run_id, status)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_run(run_id)  # an unknown run has no history, rather than an empty one
            history = self._client.get_metric_history(run_id, key)
        except MlflowException:
            raise NotFound(f"no MLflow run {run_id!r}") from None
        return sorted((int(m.step), float(m.value)) for m in history)
