"""The fine-tuning end-to-end tests' server: the HTTP API over the real services and worker process, with a
scripted engine answering chats and a tiny Llama as the weights that train."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dependency_injector import providers
from fastapi.testclient import TestClient

from mindfu_adapters.container import build_container
from mindfu_adapters.settings import Settings
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_http.app import create_app
from tests.fakes import HashEmbedder, ScriptedEngine
from tests.loopback import LoopbackCore

FAST = {"gradient_accumulation": 1, "learning_rate": 0.002, "logging_steps": 2, "save_steps": 4}


@contextmanager
def server(
    data: Path,
    tiny: Path,
    engine: ScriptedEngine | None = None,
    topology: str = "in-process",
    **training_settings: Any,
) -> Iterator[TestClient]:
    """The HTTP API over the services, in one process or as a gateway in front of its core (gRPC); the tiny
    Llama is the served model's trainable weights and, as ``scripted``, the default model."""
    # the tiny Llama's made-up tokenizer is not one llama.cpp's converter knows: no GGUF export here
    training = {"base_models": {"scripted": str(tiny)}, "export_gguf": None, **training_settings}
    llm = {"model_id": "scripted"}
    settings = Settings(data_dir=data, llm=llm, training=training)  # type: ignore[arg-type]
    container = build_container(settings)
    container.llm_engine.override(providers.Object(engine or ScriptedEngine()))
    container.embedder.override(providers.Object(HashEmbedder()))
    container.vector_store.override(providers.Object(InMemoryVectorStore()))
    runtime = LoopbackCore(container) if topology == "gateway" else None
    with TestClient(create_app(container, runtime=runtime), raise_server_exceptions=False) as client:
        yield client


def wait_for(
    client: TestClient, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 300
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        if done(job):
            return job
        assert time.monotonic() < deadline, f"the job did not get there in time: {job}"
        time.sleep(0.2)


def events(client: TestClient, job_id: str) -> list[str]:
    body = client.get(f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 99}).json()
    return [e["message"] for e in reversed(body["data"])]


def jsonl(count: int) -> bytes:
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
            ]
        }
        for i in range(count)
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()
