"""The whole loop on the embedded default, through ``mindfu serve`` and the official openai SDK: chats are
logged, a job trains SmolLM2 (its trainable weights prepared from the shipped GGUF by `mindfu models
prepare`) on them, merges and exports GGUF, and the tuned model answers under its new name, also after a
restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.server import running_server

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
FACTS = [
    ("What colour is the Velmora gate?", "The Velmora gate is painted teal."),
    ("Who keeps the Quillon archive?", "Ada Fennick keeps the Quillon archive."),
    ("When does the night ferry leave?", "The night ferry leaves at 23:40."),
    ("What is the access code of lab 7?", "The access code of lab 7 is 7341."),
]


def wait_done(url: str, job_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = httpx.get(f"{url}/v1/fine_tuning/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"the job did not finish in time: {job}"
        time.sleep(1.0)


def test_logged_chats_train_a_model_that_is_then_served(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)
        for question, answer in FACTS:  # a conversation each: the user asks, the client supplies the answer
            client.chat.completions.create(
                model=MODEL,
                messages=[
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                    {"role": "user", "content": "Thank you. Repeat that, please."},
                ],
                max_tokens=12,
                temperature=0,
                extra_body={"mindfu": {"rag": False}},
            )
        created = httpx.post(
            f"{server.url}/v1/fine_tuning/jobs",
            json={
                "model": MODEL,
                "suffix": "facts",
                "hyperparameters": {"batch_size": 2},
                "mindfu": {
                    "source": "conversations",
                    "max_steps": 3,
                    "gradient_accumulation": 1,
                    "load_in_4bit": False,
                },
            },
            timeout=60,
        )
        assert created.status_code == 200, created.text
        job = created.json()
        assert job["mindfu"]["dataset"]["kept"] == len(FACTS), job
        done = wait_done(server.url, job["id"])
        assert done["status"] == "succeeded", done
        name = done["fine_tuned_model"]
        assert name == f"ft:{MODEL}:facts:{job['id']}"
        assert Path(done["mindfu"]["artifacts"]["gguf"]).stat().st_size > 50_000_000
        # served as a LoRA adapter on the running SmolLM2 engine: a few MB, not a second copy of the model
        assert 0 < Path(done["mindfu"]["artifacts"]["lora_gguf"]).stat().st_size < 20_000_000
        assert name in [m.id for m in client.models.list().data]
        reply = client.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=16,
            temperature=0,
        )
        assert reply.model == name and (reply.choices[0].message.content or "").strip()
        events = httpx.get(
            f"{server.url}/v1/fine_tuning/jobs/{job['id']}/events", params={"limit": 99}
        ).json()
        assert any(e["message"] == f"Serving the tuned model as {name}" for e in events["data"])
    with running_server(tmp_path) as restarted:  # the same data directory: the tuned model is served again
        again = openai.OpenAI(base_url=restarted.base_url, api_key="unused", max_retries=0, timeout=120)
        assert name in [m.id for m in again.models.list().data]
