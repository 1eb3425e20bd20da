"""docker-compose.yml rendered by a real Compose implementation (Debian's ``docker-compose``, which `make
test` installs), with ``.env.example``: every profile resolves (anchors, merges, variables) to the services,
ports, health checks and environment each one needs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: What each profile starts beside PostgreSQL and Qdrant, and the host ports it publishes.
PROFILES = {
    "gguf": {"mindfu": {11434, 50051}},
    "vllm": {"vllm": {8000}, "mindfu-vllm": {11434, 50051}},
    "vllm-inproc": {"mindfu-vllm-inproc": {11434, 50051}},
    "training": {"mlflow": {5000}, "mindfu-training": {5001}},
}
ALWAYS = {"postgres": {5432}, "qdrant": {6333}}


def compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("MINDFU_REQUIRE_NODE"):  # CI installs it (make test): its absence is a failure
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed (make test installs Debian's)")
    return found


def render(profile: str, tmp_path: Path) -> dict[str, Any]:
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    done = subprocess.run(
        [compose(), "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"),
         "--env-file", str(env), "--profile", profile, "config"],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith(("MINDFU_", "COMPOSE_"))},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr  # e.g. a variable neither set nor defaulted
    rendered: dict[str, Any] = yaml.safe_load(done.stdout)
    return rendered


def started(rendered: dict[str, Any], profile: str) -> dict[str, Any]:
    return {
        name: service
        for name, service in rendered["services"].items()
        if not service.get("profiles") or profile in service["profiles"]
    }


def published(service: dict[str, Any]) -> set[int]:
    return {int(port["published"]) for port in service.get("ports", [])}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profile_renders_to_its_services_and_ports(profile: str, tmp_path: Path) -> None:
    services = started(render(profile, tmp_path), profile)
    expected = {**ALWAYS, **PROFILES[profile]}
    assert set(services) == set(expected)
    for name, ports in expected.items():
        assert published(services[name]) == ports, name
        service = services[name]
        assert "healthcheck" in service or "build" in service, name  # images built here carry HEALTHCHECK
        for dependency in (service.get("depends_on") or {}).values():
            assert dependency["condition"] == "service_healthy", name


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_mindfu_services_get_the_environment_they_need(profile: str, tmp_path: Path) -> None:
    services = started(render(profile, tmp_path), profile)
    for name, service in services.items():
        if not name.startswith("mindfu"):
            continue
        env = service["environment"]
        assert env["MINDFU_API_KEYS"] and env["MINDFU_DATA_DIR"] == "/data"
        assert env["MINDFU_DATABASE__URL"] == "postgresql://mindfu:change-me@postgres:5432/mindfu"
        assert env["MINDFU_VECTOR_STORE__URL"] == "http://qdrant:6333"
        assert env["MINDFU_LLM__MODEL_ID"] == "devstral-small-2"
        assert {"postgres", "qdrant"} <= set(service["depends_on"])


def test_the_engines_get_devstral_small_2_with_its_own_flags(tmp_path: Path) -> None:
    gguf = started(render("gguf", tmp_path), "gguf")["mindfu"]["environment"]
    assert gguf["MINDFU_LLM__MODEL_PATH"] == "/models/Devstral-Small-2-24B-Instruct-2512-Q4_K_M.gguf"
    vllm = started(render("vllm", tmp_path), "vllm")
    command = " ".join(vllm["vllm"]["command"])
    assert "--model=mistralai/Devstral-Small-2-24B-Instruct-2512" in command
    for flag in ("--tokenizer-mode=mistral", "--tool-call-parser=mistral", "--enable-auto-tool-choice",
                 "--enable-prefix-caching"):  # fmt: skip
        assert flag in command, flag
    assert vllm["mindfu-vllm"]["environment"]["MINDFU_LLM__BASE_URL"] == "http://vllm:8000/v1"


def test_the_training_profile_tracks_to_an_mlflow_server_that_serves_artifacts(tmp_path: Path) -> None:
    services = started(render("training", tmp_path), "training")
    command = services["mlflow"]["command"]
    command = " ".join(command) if isinstance(command, list) else command
    assert "--serve-artifacts" in command and "--artifacts-destination" in command
    assert "--allowed-hosts mlflow:5000," in command  # the name MindFu's container calls it by
    env = services["mindfu-training"]["environment"]
    assert env["MINDFU_TRAINING__TRACKING_URI"] == "http://mlflow:5000"
    assert env["MINDFU_TRAINING__BASE_MODELS"] == '{"devstral-small-2": "/models/Devstral-Small-2"}'
