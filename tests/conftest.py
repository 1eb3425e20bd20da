"""Shared fixtures: the HTTP app over a scripted engine, in-process and as a gateway over gRPC."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dependency_injector import providers
from fastapi.testclient import TestClient

from mindfu_adapters.container import build_container
from mindfu_adapters.settings import Settings
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_http.app import create_app
from tests.fakes import HashEmbedder, ScriptedEngine
from tests.loopback import LoopbackCore

AppFactory = Callable[..., "contextmanager[TestClient]"]

# tests/vllm_tier runs in the environment that has vLLM (`make test-vllm`, .venv-vllm), not in this one
collect_ignore = [] if importlib.util.find_spec("vllm") else ["vllm_tier"]


@contextmanager
def _client(
    engine: ScriptedEngine, tmp_path: Path, topology: str, **settings: object
) -> Iterator[TestClient]:
    container = build_container(Settings(data_dir=tmp_path, **settings))  # type: ignore[arg-type]
    container.llm_engine.override(providers.Object(engine))
    container.embedder.override(providers.Object(HashEmbedder()))
    container.vector_store.override(providers.Object(InMemoryVectorStore()))
    runtime = LoopbackCore(container) if topology == "gateway" else None
    with TestClient(create_app(container, runtime=runtime), raise_server_exceptions=False) as client:
        yield client


#: The HTTP facade over the services in its own process, and over a core reached through gRPC.
TOPOLOGIES = ["in-process", "gateway"]


@pytest.fixture(params=TOPOLOGIES)
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(tmp_path: Path, topology: str) -> Callable[..., contextmanager[TestClient]]:  # type: ignore[type-arg]
    """``with make_client(engine, api_keys=[...]) as client``: the app over ``engine``, in both topologies."""

    def factory(engine: ScriptedEngine | None = None, **settings: object) -> contextmanager[TestClient]:  # type: ignore[type-arg]
        return _client(engine or ScriptedEngine(), tmp_path, topology, **settings)

    return factory
