"""A core served by a real ``grpc.aio`` server on a free port, over the scripted engine, and stubs for it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

import grpc
from mindfu_adapters.container import build_container
from mindfu_adapters.services import Services, start, stop
from mindfu_adapters.settings import Settings
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_grpc._pb.mindfu.v1 import (
    chat_pb2_grpc,
    conversations_pb2_grpc,
    documents_pb2_grpc,
    embeddings_pb2_grpc,
    models_pb2_grpc,
)
from mindfu_grpc.server import GrpcOptions, GrpcServer
from tests.fakes import HashEmbedder, ScriptedEngine


@dataclass
class Core:
    """A running core and a channel to it, with a stub per service."""

    services: Services
    engine: ScriptedEngine
    channel: grpc.aio.Channel
    port: int

    @property
    def chat(self) -> chat_pb2_grpc.ChatServiceAsyncStub:
        return chat_pb2_grpc.ChatServiceStub(self.channel)  # type: ignore[return-value]

    @property
    def models(self) -> models_pb2_grpc.ModelServiceAsyncStub:
        return models_pb2_grpc.ModelServiceStub(self.channel)  # type: ignore[return-value]

    @property
    def embeddings(self) -> embeddings_pb2_grpc.EmbeddingServiceAsyncStub:
        return embeddings_pb2_grpc.EmbeddingServiceStub(self.channel)  # type: ignore[return-value]

    @property
    def documents(self) -> documents_pb2_grpc.DocumentServiceAsyncStub:
        return documents_pb2_grpc.DocumentServiceStub(self.channel)  # type: ignore[return-value]

    @property
    def conversations(self) -> conversations_pb2_grpc.ConversationServiceAsyncStub:
        return conversations_pb2_grpc.ConversationServiceStub(self.channel)  # type: ignore[return-value]


@asynccontextmanager
async def running_core(
    tmp_path: Path, engine: ScriptedEngine | None = None, *, port: int = 0, **settings: Any
) -> AsyncIterator[Core]:
    engine = engine or ScriptedEngine()
    container = build_container(Settings(data_dir=tmp_path, **settings))
    container.llm_engine.override(providers.Object(engine))
    container.embedder.override(providers.Object(HashEmbedder()))
    container.vector_store.override(providers.Object(InMemoryVectorStore()))
    services = await start(container)
    server = GrpcServer(
        services, GrpcOptions.from_settings(container.settings(), host="127.0.0.1", port=port)
    )
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Core(services=services, engine=engine, channel=channel, port=port)
    finally:
        await channel.close()
        await server.stop(0)
        await stop(container)


CoreFactory = Callable[..., Any]
_count = itertools.count()


@pytest.fixture
def make_core(tmp_path: Path) -> CoreFactory:
    """``async with make_core(engine, api_keys=...) as core``."""

    def factory(engine: ScriptedEngine | None = None, **settings: Any) -> Any:
        return running_core(tmp_path / f"core-{next(_count)}", engine, **settings)

    return factory
