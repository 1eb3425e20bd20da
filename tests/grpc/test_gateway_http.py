"""The HTTP facade as a gateway: a core that goes away is 503 with Retry-After, the gateway recovers when it
returns, and several gateways share one core."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from dependency_injector import providers
from fastapi.testclient import TestClient

from mindfu_adapters.container import build_container
from mindfu_adapters.settings import Settings
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_grpc.client import RemoteCore
from mindfu_grpc.server import GrpcOptions, GrpcServer
from mindfu_http.app import create_app
from tests.fakes import HashEmbedder, ScriptedEngine
from tests.loopback import LoopbackCore

USER = [{"role": "user", "content": "hi"}]


def _container(tmp_path: Path, engine: ScriptedEngine) -> object:
    container = build_container(Settings(data_dir=tmp_path))  # type: ignore[call-arg]
    container.llm_engine.override(providers.Object(engine))
    container.embedder.override(providers.Object(HashEmbedder()))
    container.vector_store.override(providers.Object(InMemoryVectorStore()))
    return container


def test_a_core_that_goes_away_is_503_and_the_gateway_recovers(tmp_path: Path) -> None:
    container = _container(tmp_path, ScriptedEngine())
    runtime = LoopbackCore(container)  # type: ignore[arg-type]
    with TestClient(create_app(container, runtime=runtime), raise_server_exceptions=False) as client:  # type: ignore[arg-type]
        assert client.get("/v1/models").status_code == 200
        assert runtime.server is not None and runtime.services is not None
        port = runtime.server.port
        client.portal.call(runtime.server.stop, 0)  # type: ignore[union-attr]

        away = client.get("/v1/models")
        assert away.status_code == 503 and int(away.headers["Retry-After"]) >= 1
        assert away.json()["error"]["type"] == "service_unavailable_error"
        chat = client.post("/v1/chat/completions", json={"model": "scripted", "messages": USER})
        assert chat.status_code == 503
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["core"]["status"] == "unreachable"

        services = runtime.services

        async def restart() -> GrpcServer:  # built on the app's loop, as grpc.aio requires
            server = GrpcServer(services, GrpcOptions(host="127.0.0.1", port=port))
            await server.start()
            return server

        runtime.server = client.portal.call(restart)  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while client.get("/v1/models").status_code != 200:
            assert time.monotonic() < deadline, "the gateway did not recover within 10 s"
            time.sleep(0.1)
        reply = client.post("/v1/chat/completions", json={"model": "scripted", "messages": USER})
        assert reply.status_code == 200 and client.get("/health/ready").status_code == 200


def test_several_gateways_share_one_core(tmp_path: Path) -> None:
    engine = ScriptedEngine(slots=2)
    container = _container(tmp_path, engine)
    runtime = LoopbackCore(container)  # type: ignore[arg-type]
    with TestClient(create_app(container, runtime=runtime), raise_server_exceptions=False) as first:  # type: ignore[arg-type]
        assert runtime.server is not None
        target = f"127.0.0.1:{runtime.server.port}"
        second_runtime = RemoteCore(target)
        second_app = create_app(build_container(Settings(data_dir=tmp_path / "gw2")), runtime=second_runtime)  # type: ignore[call-arg]
        with TestClient(second_app, raise_server_exceptions=False) as second:
            for client in (first, second, first):
                reply = client.post("/v1/chat/completions", json={"model": "scripted", "messages": USER})
                assert reply.status_code == 200, reply.text
                assert isinstance(client, TestClient) and httpx.codes.is_success(reply.status_code)
    assert len(engine.requests) == 3  # all three reached the one core
