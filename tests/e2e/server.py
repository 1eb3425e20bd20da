"""Start ``mindfu serve`` as a subprocess on a free port, the way users run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

import grpc

MINDFU = str(Path(sys.executable).with_name("mindfu"))


def data_env(data_dir: Path) -> dict[str, str]:
    """Settings for a fresh data directory (the embedding model `make install` prepared is found anyway)."""
    return {"MINDFU_DATA_DIR": str(data_dir), "MINDFU_GRPC__PORT": str(free_port())}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: Path
    grpc_port: int
    core: subprocess.Popen[str] | None = None  # the core process behind a gateway

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def ready(self) -> dict[str, object]:
        body: dict[str, object] = httpx.get(f"{self.url}/health/ready", timeout=5).json()
        return body

    def engine(self) -> dict[str, int]:
        engines = self.ready()["engines"]
        assert isinstance(engines, list)
        return engines[0]  # type: ignore[no-any-return]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as out:
        return subprocess.Popen(
            [MINDFU, "serve", *args], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )


def _wait(process: subprocess.Popen[str], log: Path, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"mindfu serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if ready():
                return
        except (httpx.HTTPError, grpc.RpcError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"mindfu serve did not become ready:\n{log.read_text()}")
        time.sleep(0.1)


def _serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        found = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        return bool(found.status == health_pb2.HealthCheckResponse.SERVING)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(
    tmp_path: Path, env: dict[str, str] | None = None, timeout: float = 120, topology: str = "in-process"
) -> Iterator[Server]:
    """``mindfu serve`` (HTTP and gRPC in one process), or with ``topology="gateway"`` a core
    (``--role core``, gRPC only) and a gateway in front of it (``--role gateway --core ...``)."""
    port, grpc_port = free_port(), free_port()
    log = tmp_path / f"server-{port}.log"
    full_env = {**os.environ, **data_env(tmp_path / "data"), **(env or {})}
    core: subprocess.Popen[str] | None = None
    try:
        if topology == "gateway":
            core_log = tmp_path / f"core-{grpc_port}.log"
            core = _start(["--role", "core", "--grpc-port", str(grpc_port)], full_env, core_log)
            _wait(core, core_log, lambda: _serving(f"127.0.0.1:{grpc_port}"), timeout)
            args = ["--role", "gateway", "--core", f"127.0.0.1:{grpc_port}", "--port", str(port)]
        else:
            args = ["--port", str(port), "--grpc-port", str(grpc_port)]
        process = _start(args, full_env, log)
        server = Server(
            url=f"http://127.0.0.1:{port}", process=process, log=log, grpc_port=grpc_port, core=core
        )
        try:
            url = f"{server.url}/health/ready"
            _wait(process, log, lambda: httpx.get(url, timeout=1).status_code == 200, timeout)
            yield server
        finally:
            _stop(process)
    finally:
        if core is not None:
            _stop(core)
