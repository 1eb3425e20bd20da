"""One contract for the ExperimentTracker port, run on every adapter: MLflow (a SQLite tracking store, read
back through MLflow's own client too) and the in-memory tracker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mindfu_adapters.tracker.memory import InMemoryTracker
from mindfu_adapters.tracker.mlflow import MlflowTracker
from mindfu_core.errors import NotFound
from mindfu_core.ports.tracker import ExperimentTracker


@pytest.fixture(params=["memory", "mlflow"])
def tracker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExperimentTracker]:
    if request.param == "memory":
        yield InMemoryTracker(artifact_root=tmp_path / "artifacts")
    else:
        yield MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")


def test_a_run_records_params_metrics_by_step_and_artifacts(
    tracker: ExperimentTracker, tmp_path: Path
) -> None:
    run = tracker.start_run("mindfu-test", run_name="job-1", tags={"mindfu.job": "ftjob-1"})
    tracker.log_params(run, {"lora_r": 16, "learning_rate": 2e-4, "long": "x" * 10_000})
    for step in (10, 20, 30):
        tracker.log_metrics(run, {"loss": 3.0 - step / 100, "learning_rate": 1e-4}, step=step)
    tracker.log_metrics(run, {"eval_loss": 2.5}, step=30)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    tracker.log_artifacts(run, str(adapter), "adapter")
    tracker.end_run(run, "FINISHED")
    assert tracker.metric_history(run, "loss") == [(10, 2.9), (20, 2.8), (30, 2.7)]
    assert tracker.metric_history(run, "eval_loss") == [(30, 2.5)]
    assert tracker.metric_history(run, "never_logged") == []


def test_runs_are_separate_and_experiments_reused(tracker: ExperimentTracker) -> None:
    first = tracker.start_run("shared")
    second = tracker.start_run("shared")
    assert first != second
    tracker.log_metrics(first, {"loss": 1.0}, step=1)
    assert tracker.metric_history(second, "loss") == []
    tracker.end_run(first, "FAILED")
    tracker.end_run(second, "KILLED")


def test_an_unknown_run_is_not_found(tracker: ExperimentTracker) -> None:
    with pytest.raises(NotFound):
        tracker.metric_history("0" * 32, "loss")


def test_mlflow_reads_back_what_the_tracker_wrote(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, artifact_root=tmp_path / "artifacts")
    run = tracker.start_run("readback", run_name="job")
    tracker.log_params(run, {"lora_alpha": 32})
    tracker.log_metrics(run, {"loss": 1.25}, step=10)
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    tracker.log_artifacts(run, str(folder), "adapter")
    tracker.end_run(run)
    found = MlflowClient(tracking_uri=uri).get_run(run)
    assert found.data.params["lora_alpha"] == "32" and found.data.metrics["loss"] == 1.25
    assert found.info.status == "FINISHED" and found.info.run_name == "job"
    listed = MlflowClient(tracking_uri=uri).list_artifacts(run, "adapter")
    assert [f.path for f in listed] == ["adapter/adapter_model.safetensors"]
