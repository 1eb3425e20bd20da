"""``mindfu train`` against ``mindfu serve``: a JSONL file uploaded and trained on with a progress bar
(``--follow``), then ``status`` and ``list``; a bad file is refused naming its line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.server import MINDFU, data_env, running_server
from tests.fixtures.tiny_llama import write_tiny_llama

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"


def mindfu(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MINDFU, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_train_start_follow_status_and_list(tmp_path: Path) -> None:
    tiny = write_tiny_llama(tmp_path / "tiny")  # stands in for the served model's trainable weights
    data = tmp_path / "train.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"Say {i}"},
                        {"role": "assistant", "content": f"I say {i}."},
                    ]
                }
            )
            for i in range(24)
        )
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n')
    env = {"MINDFU_TRAINING__BASE_MODELS": json.dumps({MODEL: str(tiny)}), "MINDFU_TRAINING__EXPORT_GGUF": ""}
    with running_server(tmp_path, env=env) as server:
        refused = mindfu("train", "start", "--model", MODEL, "--file", str(bad), "--server", server.url)
        assert refused.returncode == 1 and "line 1" in refused.stderr
        started = mindfu(
            "train", "start", "--model", MODEL, "--file", str(data), "--max-steps", "4", "--suffix", "cli",
            "--follow", "--server", server.url,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        assert "uploaded" in started.stdout and "(24 examples)" in started.stdout
        final = started.stdout.strip().splitlines()[-1]
        assert " succeeded " in final and f"ft:{MODEL}:cli:" in final
        assert "step" in started.stderr  # the progress bar
        job_id = final.split()[0]
        status = mindfu("train", "status", "--server", server.url)
        assert status.returncode == 0 and status.stdout.startswith(job_id)
        assert "The job has successfully completed" in status.stdout
        listed = mindfu("train", "list", "--json", "--server", server.url)
        assert [j["id"] for j in json.loads(listed.stdout)["data"]] == [job_id]
        missing = mindfu("train", "cancel", "ftjob-nope", "--server", server.url)
        assert missing.returncode == 1 and "No fine-tuning job" in missing.stderr


def test_train_start_runs_in_this_process_without_a_server(tmp_path: Path) -> None:
    """No --server: the job runs in the command's own process, followed to its end; list, status and cancel
    then read the data directory's jobs without running any."""
    tiny = write_tiny_llama(tmp_path / "tiny")
    data = tmp_path / "train.jsonl"
    reply = {"role": "assistant", "content": "ok"}
    lines = [{"messages": [{"role": "user", "content": f"Say {i}"}, reply]} for i in range(12)]
    data.write_text("\n".join(json.dumps(line) for line in lines))
    env = {
        **data_env(tmp_path / "data"),
        "MINDFU_TRAINING__BASE_MODELS": json.dumps({MODEL: str(tiny)}),
        "MINDFU_TRAINING__EXPORT_GGUF": "",
    }
    args = ["train", "start", "--model", MODEL, "--file", str(data), "--max-steps", "2", "--suffix", "here"]
    started = mindfu(*args, env=env)
    assert started.returncode == 0, started.stderr
    final = started.stdout.strip().splitlines()[-1]
    assert " succeeded " in final and f"ft:{MODEL}:here:" in final, started.stdout
    assert "step" in started.stderr  # followed with a progress bar though --follow was not given
    job_id = final.split()[0]
    listed = mindfu("train", "list", "--json", env=env)
    (job,) = json.loads(listed.stdout)["data"]
    assert job["id"] == job_id and job["status"] == "succeeded" and job["mindfu"]["attempts"] == 1
    status = mindfu("train", "status", env=env)
    assert status.returncode == 0 and "The job has successfully completed" in status.stdout
    done = mindfu("train", "cancel", job_id, env=env)
    assert done.returncode == 1 and "already succeeded" in done.stderr
