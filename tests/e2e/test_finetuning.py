"""Fine-tuning end to end on the CPU: the HTTP API over the real worker process, QloraTrainer on a tiny
Llama built here, MLflow read back through its own client; training from an uploaded file (in one process,
and through a gateway whose core trains) and from the logged conversations, cancellation, and a job a
server restart interrupted resuming from its checkpoint."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.e2e.training import FAST, events, jsonl, server, wait_for
from tests.fakes import Reply, ScriptedEngine
from tests.fixtures.tiny_llama import write_tiny_llama

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("topology", ["in-process", "gateway"])
def test_a_job_from_an_uploaded_file_trains_tracks_merges_and_registers(
    tmp_path: Path, tiny: Path, topology: str, request: pytest.FixtureRequest
) -> None:
    """In one process tracked to the default SQLite store; through a gateway, to a real ``mlflow server``
    that stores the artifacts (the compose training profile's)."""
    from mlflow.tracking import MlflowClient

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if topology == "gateway":
        tracking = request.getfixturevalue("mlflow_url")
    with server(tmp_path, tiny, topology=topology, tracking_uri=tracking) as client:
        bad = client.post(
            "/v1/files",
            files={"file": ("bad.jsonl", io.BytesIO(jsonl(3) + b"\n{oops"))},
            data={"purpose": "fine-tune"},
        )
        assert bad.status_code == 400 and "line 4" in bad.json()["error"]["message"]
        uploaded = client.post(
            "/v1/files", files={"file": ("train.jsonl", io.BytesIO(jsonl(40)))}, data={"purpose": "fine-tune"}
        )
        assert uploaded.status_code == 200, uploaded.text
        file = uploaded.json()
        assert file["object"] == "file" and file["mindfu"]["examples"] == 40
        created = client.post(
            "/v1/fine_tuning/jobs",
            json={
                "model": "scripted",
                "training_file": file["id"],
                "suffix": "sums",
                "hyperparameters": {"batch_size": 2},
                "mindfu": {"max_steps": 8, **FAST},
            },
        )
        assert created.status_code == 200, created.text
        job = created.json()
        assert job["object"] == "fine_tuning.job" and job["status"] == "queued"
        assert job["mindfu"]["dataset"]["kept"] == 40
        done = wait_for(client, job["id"], lambda j: j["status"] in ("succeeded", "failed", "cancelled"))
        assert done["status"] == "succeeded", done
        assert done["fine_tuned_model"] == f"ft:scripted:sums:{job['id']}"
        evaluation = done["mindfu"]["evaluation"]
        assert evaluation["eval_loss"] < evaluation["base_eval_loss"]
        artifacts = done["mindfu"]["artifacts"]
        assert (Path(artifacts["adapter"]) / "adapter_model.safetensors").exists()
        assert (Path(artifacts["merged"]) / "model.safetensors").exists()
        for kind, library in (("adapter", "peft"), ("merged", "transformers")):  # hub-ready model cards
            card = (Path(artifacts[kind]) / "README.md").read_text()
            assert f"library_name: {library}" in card and done["fine_tuned_model"] in card, kind
        vllm = json.loads(Path(artifacts["vllm"]).read_text())
        assert vllm["served_model_name"] == done["fine_tuned_model"]
        assert f"--lora-modules {done['fine_tuned_model']}={artifacts['adapter']}" in vllm["lora"]["command"]
        assert done["trained_tokens"] > 0 and done["mindfu"]["progress"]["step"] == 8
        messages = events(client, job["id"])
        assert (
            messages[0] == "Created the fine-tuning job"
            and messages[-1] == "The job has successfully completed"
        )
        assert any(m.startswith("Step 8/8: ") for m in messages)
        steps = [
            c["step_number"]
            for c in client.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
        ]
        assert steps == [8, 4]
        listed = client.get("/v1/fine_tuning/jobs").json()
        assert [j["id"] for j in listed["data"]] == [job["id"]]

    mlflow = MlflowClient(tracking_uri=tracking)
    run = mlflow.get_run(done["mindfu"]["mlflow_run_id"])
    assert (
        run.info.status == "FINISHED"
        and run.data.params["lora_r"] == "16"
        and run.data.params["lora_alpha"] == "32"
    )
    assert [m.step for m in mlflow.get_metric_history(run.info.run_id, "loss")] == [2, 4, 6, 8]
    assert "base_eval_loss" in run.data.metrics and "perplexity" in run.data.metrics
    assert [a.path for a in mlflow.list_artifacts(run.info.run_id)] == ["adapter"]
    fetched = Path(mlflow.download_artifacts(run.info.run_id, "adapter", str(tmp_path / "fetched")))
    weights = "adapter_model.safetensors"
    assert (fetched / weights).read_bytes() == (Path(artifacts["adapter"]) / weights).read_bytes()


def test_conversations_train_cancel_and_resume_after_a_restart(tmp_path: Path, tiny: Path) -> None:
    engine = ScriptedEngine([Reply(text=f"The code for item {i} is {1000 + 37 * i}.") for i in range(30)])
    with server(tmp_path, tiny, engine) as client:
        for i in range(30):
            reply = client.post(
                "/v1/chat/completions",
                json={
                    "model": "scripted",
                    "messages": [{"role": "user", "content": f"What is the code for item {i}?"}],
                },
            )
            assert reply.status_code == 200
        few = client.post(
            "/v1/fine_tuning/jobs", json={"model": "scripted", "mindfu": {"quality": {"min_turns": 5}}}
        ).json()
        assert few["status"] == "failed" and "too_few_turns 30" in few["error"]["message"]
        job = client.post(
            "/v1/fine_tuning/jobs",
            json={"model": "scripted", "mindfu": {"source": "conversations", "max_steps": 2000, **FAST}},
        ).json()
        assert job["status"] == "queued" and job["mindfu"]["dataset"]["kept"] == 30, job
        wait_for(client, job["id"], lambda j: j["mindfu"]["progress"]["step"] >= 5)
    # the server stopped with the job running: it is still running in its record, with a checkpoint
    with server(tmp_path, tiny, engine) as client:
        resumed = wait_for(
            client, job["id"], lambda j: j["mindfu"]["attempts"] == 2 and j["status"] == "running"
        )
        messages = events(client, job["id"])
        assert any("Interrupted by a server restart" in m for m in messages)
        wait_for(
            client,
            job["id"],
            lambda j: any(m.startswith("Resuming from checkpoint-") for m in events(client, j["id"])),
        )
        cancelled = client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200
        final = wait_for(client, job["id"], lambda j: j["status"] == "cancelled")
        assert final["mindfu"]["progress"]["step"] < 2000 and resumed["mindfu"]["source"] == "conversations"
        assert client.get(f"/v1/fine_tuning/jobs/{job['id']}/checkpoints").json()["data"]
        again = client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel")
        assert again.status_code == 400
        status = client.get("/train/status").json()
        assert status["id"] == job["id"]


def test_an_export_this_machine_cannot_produce_is_refused_before_training(tmp_path: Path, tiny: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: AWQ can be produced here")
    with server(tmp_path, tiny, export_awq=True) as client:
        uploaded = client.post("/v1/files", files={"file": ("t.jsonl", io.BytesIO(jsonl(10)))}).json()
        refused = client.post(
            "/v1/fine_tuning/jobs", json={"model": "scripted", "training_file": uploaded["id"]}
        )
        assert refused.status_code == 400
        assert "AWQ export needs a CUDA GPU" in refused.json()["error"]["message"]
        assert client.get("/v1/fine_tuning/jobs").json()["data"] == []  # nothing was recorded


def test_a_job_quantizes_its_model_with_awq(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``export_awq`` on the CPU, through the AWQ environment: the job's merged model is quantized, and the
    vLLM manifest serves it in bfloat16 (vLLM's CPU kernel for it has no float32 path)."""
    from tests.fixtures.awq import awq_python

    wide = write_tiny_llama(tmp_path_factory.mktemp("wide"), hidden_size=256, intermediate_size=512)
    awq = {"export_awq": True, "awq_python": awq_python(), "awq_device": "cpu"}
    with server(tmp_path, wide, **awq) as client:
        uploaded = client.post("/v1/files", files={"file": ("t.jsonl", io.BytesIO(jsonl(20)))}).json()
        created = client.post(
            "/v1/fine_tuning/jobs",
            json={
                "model": "scripted",
                "training_file": uploaded["id"],
                "mindfu": {"max_steps": 2, **FAST},
            },
        )
        assert created.status_code == 200, created.text
        done = wait_for(client, created.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
        messages = events(client, done["id"])
    assert done["status"] == "succeeded", (done, messages)
    assert "Quantizing with AWQ for vLLM (cpu)" in messages
    artifacts = done["mindfu"]["artifacts"]
    quantized = Path(artifacts["awq"])
    config = json.loads((quantized / "config.json").read_text())
    assert config["quantization_config"]["format"] == "pack-quantized"
    awq = json.loads(Path(artifacts["vllm"]).read_text())["awq"]
    assert awq["model"] == str(quantized) and awq["command"].endswith("--dtype bfloat16")
