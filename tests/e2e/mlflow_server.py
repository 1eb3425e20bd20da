"""A real ``mlflow server``, started with the compose file's own command (host, port and paths swapped for
the test's): artifacts stored by the server and served through it, as the training profile deploys it."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from tests.e2e.server import free_port

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"


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


@contextmanager
def running_mlflow(root: Path) -> Iterator[str]:
    """``mlflow server`` as the compose file runs it, on a free port with its store under ``root``."""
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
