"""The application a CLI command runs against: this process's (``LocalApplication``), or a running server's
named by ``--server``: ``http(s)://HOST:PORT`` over its REST API, ``grpc://HOST:PORT`` over its gRPC
services. The key for a server comes from ``MINDFU_API_KEY``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mindfu_core.application import Application
from mindfu_core.errors import InvalidRequest

SERVER_HELP = (
    "a running MindFu server to go through: http://HOST:PORT (REST) or grpc://HOST:PORT "
    "(its API key from MINDFU_API_KEY)"
)


@asynccontextmanager
async def application(server: str | None, *, training: bool = False) -> AsyncIterator[Application]:
    """The application for ``server`` (``None``: this process's, parts started as commands need them),
    closed when the block ends."""
    key = os.environ.get("MINDFU_API_KEY") or None
    if server is None:
        from mindfu_adapters.container import build_container
        from mindfu_adapters.local import LocalApplication

        local = LocalApplication(build_container(), training=training)
        try:
            yield local
        finally:
            await local.close()
    elif server.startswith(("http://", "https://")):
        from mindfu_http.client import connect

        remote = await connect(server, api_key=key)
        try:
            yield remote
        finally:
            await remote.aclose()
    elif server.startswith("grpc://"):
        from mindfu_grpc.client import RemoteCore

        core = RemoteCore(server.removeprefix("grpc://").rstrip("/"), api_key=key, connect_timeout=10.0)
        try:
            yield await core.start()
        finally:
            await core.stop()
    else:
        raise InvalidRequest(
            f"--server takes http://HOST:PORT or grpc://HOST:PORT, not {server!r}", param="server"
        )
