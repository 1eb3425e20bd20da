"""MLflow as the compose file's training profile deploys it, and the description's ``POST /train/start``.

A real ``mlflow server`` runs the compose file's own command, with host, port and paths swapped for the
test's. The server stores artifacts and serves them (``--serve-artifacts``): MindFu's worker uploads them over
HTTP, and MLflow's client downloads them the same way. MindFu's container reaches the server as
``mlflow:5000``, so the server's host check must accept that name."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.server import free_port
from tests.e2e.training import FAST, jsonl, server, wait_for
from tests.fakes import Reply, ScriptedEngine

pytestmark = pytest.mark.slow
COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"
FINISHED = ("succeeded", "failed", "cancelled")


def compose_command() -> list[str]:
    """The command the compose file's ``mlflow`` service runs."""
    command = yaml.safe_load(COMPOSE.read_text())["services"]["mlflow"]["command"]
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def swapped(args: list[str], values: dict[str, str]) -> list[str]:
    """``args`` with the value after each flag in ``values`` replaced (each flag must be there)."""
    out = list(args)
    for flag, value in values.items():
        assert flag in out, f"the compose command has no {flag}: {args}"
        out[out.index(flag) + 1] = value
    return out


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    args = compose_command()
    assert args[:2] == ["mlflow", "server"], args
    args = swapped(
        args,
        {
            "--host": "127.0.0.1",
            "--port": str(port),
            "--backend-store-uri": f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination": str(root / "artifacts"),
        },
    )
    log = root / "server.log"
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    with log.open("w") as out:
        process = subprocess.Popen([mlflow, *args[1:]], stdout=out, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"mlflow server exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"mlflow server did not start:\n{log.read_text()}"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_the_server_answers_to_the_name_compose_gives_it(mlflow_url: str) -> None:
    search = f"{mlflow_url}/api/2.0/mlflow/experiments/get-by-name"
    params = {"experiment_name": "Default"}
    assert httpx.get(search, params=params, headers={"Host": "mlflow:5000"}).status_code == 200
    # the check is on: a name the deployment does not give is refused
    assert httpx.get(search, params=params, headers={"Host": "attacker.example"}).status_code == 403


def test_train_start_with_the_description_body(tmp_path: Path, tiny: Path, mlflow_url: str) -> None:
    """``{"num_epochs": 3, "experiment_name": "my-finetune"}`` on the logged conversations, at the recipe's
    defaults (batch 2 x accumulation 8), tracked in the experiment named as asked."""
    from mlflow.tracking import MlflowClient

    replies = [Reply(text=f"Order {i} ships from warehouse {i % 3} on day {i + 1}.") for i in range(6)]
    with server(tmp_path, tiny, ScriptedEngine(replies), tracking_uri=mlflow_url) as client:
        for i in range(6):
            asked = {"messages": [{"role": "user", "content": f"When does order {i} ship?"}]}
            assert client.post("/v1/chat/completions", json={"model": "scripted", **asked}).status_code == 200
        started = client.post("/train/start", json={"num_epochs": 3, "experiment_name": "my-finetune"})
        assert started.status_code == 200, started.text
        job = started.json()
        assert job["model"] == "scripted" and job["hyperparameters"]["n_epochs"] == 3
        assert job["hyperparameters"]["batch_size"] == 2 and job["mindfu"]["source"] == "conversations"
        done = wait_for(client, job["id"], lambda j: j["status"] in FINISHED, timeout=600)
        assert done["status"] == "succeeded", done
        assert done["mindfu"]["progress"]["step"] == 3  # one optimizer step per epoch on 6 conversations
        assert client.get("/train/status").json()["id"] == job["id"]
        adapter = Path(done["mindfu"]["artifacts"]["adapter"])

    tracking = MlflowClient(tracking_uri=mlflow_url)
    experiment = tracking.get_experiment_by_name("my-finetune")
    assert experiment is not None
    run = tracking.get_run(done["mindfu"]["mlflow_run_id"])
    assert run.info.experiment_id == experiment.experiment_id and run.info.status == "FINISHED"
    params = run.data.params
    recipe = {"epochs": "3.0", "batch_size": "2", "gradient_accumulation": "8", "logging_steps": "10"}
    recipe |= {"lora_r": "16", "lora_alpha": "32", "lora_dropout": "0.05", "optimizer": "paged_adamw_8bit"}
    assert {key: params.get(key) for key in recipe} == recipe
    # fewer steps than logging_steps: no step metrics, the evaluation gate's figures at the end
    assert tracking.get_metric_history(run.info.run_id, "loss") == []
    assert {"eval_loss", "base_eval_loss", "perplexity", "base_perplexity"} <= run.data.metrics.keys()
    # the artifacts went to the server, which serves them back
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    fetched = Path(tracking.download_artifacts(run.info.run_id, "adapter", str(tmp_path / "fetched")))
    weights = "adapter_model.safetensors"
    assert (fetched / weights).read_bytes() == (adapter / weights).read_bytes()


def test_metrics_every_logging_steps_reach_the_server(tmp_path: Path, tiny: Path, mlflow_url: str) -> None:
    from mlflow.tracking import MlflowClient

    with server(tmp_path, tiny, tracking_uri=mlflow_url) as client:
        file = client.post("/v1/files", files={"file": ("t.jsonl", jsonl(24))}, data={"purpose": "fine-tune"})
        created = client.post(
            "/v1/fine_tuning/jobs",
            json={
                "model": "scripted",
                "training_file": file.json()["id"],
                "hyperparameters": {"batch_size": 2},
                "mindfu": {"max_steps": 6, "experiment": "logging-steps", **FAST},
            },
        )
        assert created.status_code == 200, created.text
        done = wait_for(client, created.json()["id"], lambda j: j["status"] in FINISHED)
        assert done["status"] == "succeeded", done

    tracking = MlflowClient(tracking_uri=mlflow_url)
    run = tracking.get_run(done["mindfu"]["mlflow_run_id"])
    assert FAST["logging_steps"] == 2
    for metric in ("loss", "learning_rate", "grad_norm"):
        assert [m.step for m in tracking.get_metric_history(run.info.run_id, metric)] == [2, 4, 6], metric
    assert [a.path for a in tracking.list_artifacts(run.info.run_id)] == ["adapter"]
