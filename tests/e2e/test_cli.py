"""The ``mindfu`` command: help without loading models, version, start-up errors, chat, models list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mindfu_core
from tests.e2e.server import MINDFU, data_env


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MINDFU, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_help_loads_no_model_or_web_stack() -> None:
    probe = (
        "import sys\n"
        "from mindfu_cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('llama_cpp', 'fastapi', 'uvicorn', 'pydantic_settings') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "serve" in result.stdout and "chat" in result.stdout
    assert "HEAVY []" in result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"mindfu {mindfu_core.__version__}"


def test_missing_model_file_names_the_path_and_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    result = run("serve", "--port", "0", env={"MINDFU_LLM__MODEL_PATH": str(missing)})
    assert result.returncode != 0
    assert str(missing) in result.stderr
    assert "MINDFU_LLM__MODEL_PATH" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    result = run("serve", "--port", "0", env={"MINDFU_LLM__MODEL_PATH": str(fake)})
    assert result.returncode != 0
    assert "not a GGUF" in result.stderr and str(fake) in result.stderr


def test_models_list_shows_the_default_model() -> None:
    result = run("models", "list")
    assert result.returncode == 0
    assert "smollm2-135m-instruct" in result.stdout and "[ok]" in result.stdout


@pytest.mark.slow
def test_chat_streams_an_answer(tmp_path: Path) -> None:
    result = run(
        "chat",
        "What is the capital of France? Answer in one sentence.",
        "--temperature",
        "0",
        "--max-tokens",
        "24",
        env=data_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


@pytest.mark.slow
def test_chat_repl_reads_until_eof(tmp_path: Path) -> None:
    result = subprocess.run(
        [MINDFU, "chat", "--max-tokens", "8"],
        input="Hello!\n/exit\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **data_env(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("> ") >= 2


def test_public_bind_without_keys_warns(tmp_path: Path) -> None:
    from tests.e2e.server import free_port
    from tests.fixtures.tiny_gguf import write_tiny_gguf

    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    env = {**os.environ, "MINDFU_LLM__MODEL_PATH": str(model), **data_env(tmp_path)}
    process = subprocess.Popen(
        [MINDFU, "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        output = "".join(lines)
        assert "no API keys" in output
        assert "MINDFU_API_KEYS" in output
    finally:
        process.terminate()
        process.wait(timeout=15)
