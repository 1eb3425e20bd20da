"""Start ``mindfu serve`` as a subprocess on a free port, the way users run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

MINDFU = str(Path(sys.executable).with_name("mindfu"))


def data_env(data_dir: Path) -> dict[str, str]:
    """Settings for a fresh data directory (the embedding model `make install` prepared is found anyway)."""
    return {"MINDFU_DATA_DIR": str(data_dir)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def ready(self) -> dict[str, object]:
        body: dict[str, object] = httpx.get(f"{self.url}/health/ready", timeout=5).json()
        return body

    def engine(self) -> dict[str, int]:
        engines = self.ready()["engines"]
        assert isinstance(engines, list)
        return engines[0]  # type: ignore[no-any-return]


@contextmanager
def running_server(
    tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    full_env = {
        **os.environ,
        **data_env(tmp_path / "data"),
        **(env or {}),
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [MINDFU, "serve", "--port", str(port)],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mindfu serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{server.url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mindfu serve did not become ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
