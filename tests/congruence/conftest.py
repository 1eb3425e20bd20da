"""Three implementations of ``mindfu_core.application.Application`` over three equal cores: the services in
this process, ``RemoteApplication`` through a real gRPC server, and ``HttpApplication`` through a real
HTTP server (uvicorn on a free port). A scenario runs against each, and what it saw must be equal."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from dependency_injector import providers

from mindfu_adapters.container import Container, build_container
from mindfu_adapters.services import start, stop
from mindfu_adapters.settings import Settings
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_core.application import Application
from mindfu_grpc.client import RemoteCore
from mindfu_grpc.server import GrpcOptions, GrpcServer
from mindfu_http.app import create_app
from mindfu_http.client import connect
from tests.fakes import HashEmbedder, Reply, ScriptedEngine

IMPLEMENTATIONS = ("in-process", "grpc", "http")
#: what a run measures (equal runs differ in them)
MEASURED = {"latency_ms", "ttft_ms", "tokens_per_s", "eta_s", "learning_rate_now"}
#: ids the core makes up at random (the documents' and chunks' are derived from content, equal everywhere)
#: a core's own data folder, in the paths of its artifacts
OWN_FOLDER = re.compile(r"/(?:in-process|grpc|http)/")
#: measurements written into messages (a training step's throughput)
MEASURED_TEXT = re.compile(r"\b(tokens_per_s|eta_s)=[0-9.]+")
RANDOM_ID = re.compile(
    r"\b(?:file|ftjob|ftevent|conv|fb|chatcmpl|cmpl|call|key)[-_][0-9a-f]{8,}\b|\b[0-9a-f]{32}\b"
)


def _container(root: Path, engine: ScriptedEngine, settings: Mapping[str, Any]) -> Container:
    container = build_container(Settings(data_dir=root, **settings))
    container.llm_engine.override(providers.Object(engine))
    container.embedder.override(providers.Object(HashEmbedder()))
    container.vector_store.override(providers.Object(InMemoryVectorStore()))
    return container


def _client_key(container: Container) -> str | None:
    """The key a remote client presents: the server's first settings key (an admin), if it takes keys."""
    keys = container.settings().all_api_keys()
    return keys[0] if keys else None


async def _in_process(stack: AsyncExitStack, container: Container) -> Application:
    services = await start(container)
    stack.push_async_callback(stop, container)
    return services


async def _grpc(stack: AsyncExitStack, container: Container) -> Application:
    services = await start(container)
    stack.push_async_callback(stop, container)
    server = GrpcServer(services, GrpcOptions.from_settings(container.settings(), host="127.0.0.1", port=0))
    port = await server.start()
    stack.push_async_callback(server.stop, 0)
    core = RemoteCore(f"127.0.0.1:{port}", api_key=_client_key(container), connect_timeout=10.0)
    application = await core.start()
    stack.push_async_callback(core.stop)
    return application


async def _http(stack: AsyncExitStack, container: Container) -> Application:
    config = uvicorn.Config(create_app(container), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def shut() -> None:
        server.should_exit = True
        await task

    stack.push_async_callback(shut)
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the HTTP server stopped while starting")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    application = await connect(f"http://127.0.0.1:{port}", api_key=_client_key(container))
    stack.push_async_callback(application.aclose)
    return application


_STARTERS: dict[str, Callable[[AsyncExitStack, Container], Awaitable[Application]]] = {
    "in-process": _in_process,
    "grpc": _grpc,
    "http": _http,
}


@asynccontextmanager
async def three(
    tmp_path: Path,
    replies: Sequence[Reply] = (Reply(text="Hello from the scripted engine."),),
    *,
    engine: Callable[[], ScriptedEngine] | None = None,
    **settings: Any,
) -> AsyncIterator[dict[str, Application]]:
    """The three implementations, each over a core of its own with the same script (or a fresh ``engine()``
    each) and settings."""
    async with AsyncExitStack() as stack:
        apps = {}
        for name in IMPLEMENTATIONS:
            made = engine() if engine is not None else ScriptedEngine(replies)
            container = _container(tmp_path / name, made, settings)
            apps[name] = await _STARTERS[name](stack, container)
        yield apps


def plain(value: Any, ids: dict[str, str]) -> Any:
    """``value`` as plain data to compare: random ids numbered in order of appearance, times left out
    (the HTTP API gives whole seconds, as OpenAI's does), floats rounded."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found = {f.name: plain(getattr(value, f.name), ids) for f in dataclasses.fields(value)}
        for name in MEASURED & found.keys():
            found[name] = None if found[name] is None else "<measured>"
        if "next_cursor" in found:
            found["next_cursor"] = _cursor(value)
        return found
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return "<time>"
    if isinstance(value, Mapping):
        return {str(k): plain(v, ids) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, ids) for v in value]
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, str):
        value = MEASURED_TEXT.sub(r"\1=<measured>", OWN_FOLDER.sub("/<own>/", value))
        return RANDOM_ID.sub(lambda m: ids.setdefault(m.group(0), f"<id{len(ids)}>"), value)
    return value


def _cursor(page: Any) -> str | None:
    """Whether a page has a next one: cursors are opaque (some carry a time and an id)."""
    return None if page.next_cursor is None else "<cursor>"


async def observe(
    apps: Mapping[str, Application], scenario: Callable[[Application], Awaitable[Any]]
) -> dict[str, Any]:
    """What ``scenario`` saw on each implementation, as plain data."""
    return {name: plain(await scenario(app), {}) for name, app in apps.items()}


def assert_congruent(seen: Mapping[str, Any]) -> Any:
    """Every implementation saw what the in-process one saw; returns that."""
    reference = seen["in-process"]
    for name, found in seen.items():
        if isinstance(reference, dict) and isinstance(found, dict):
            differing = [key for key in reference if found.get(key) != reference[key]]
            for key in differing:
                print(f"{name} differs in {key}:\n{found.get(key)}\n!=\n{reference[key]}")
        assert found == reference, f"{name} differs from in-process"
    return reference
