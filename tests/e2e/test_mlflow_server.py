"""MLflow as the compose file's training profile deploys it, and the description's ``POST /train/start``.

A real ``mlflow server`` runs the compose file's own command, with host, port and paths swapped for the
test's. The server stores artifacts and serves them (``--serve-artifacts``): MindFu's worker uploads them over
HTTP, and MLflow's client downloads them the same way. MindFu's container reaches the server as
``mlflow:5000``, so the server's host check must accept that name. (The metrics every ``logging_steps`` a job
sends to such a server are read back in ``test_finetuning.py``'s gateway case.)"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.training import server, wait_for
from tests.fakes import Reply, ScriptedEngine

pytestmark = pytest.mark.slow
FINISHED = ("succeeded", "failed", "cancelled")


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
