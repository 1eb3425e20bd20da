"""A gateway and its core in one event loop: the container's services served by a real gRPC server on a
free port, and the HTTP facade's application a real gRPC client of it (``RemoteCore``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mindfu_adapters.container import Container
from mindfu_adapters.services import Services, start, stop
from mindfu_grpc.client import RemoteApplication, RemoteCore
from mindfu_grpc.server import GrpcOptions, GrpcServer


class LoopbackCore:
    """A ``Runtime`` for ``create_app``: starts the core (services + gRPC server), then the client."""

    def __init__(self, container: Container) -> None:
        self._container = container
        keys = container.settings().all_api_keys()
        self._core_key = keys[0] if keys else None  # as `mindfu serve --role gateway` picks it
        self.services: Services | None = None
        self.server: GrpcServer | None = None
        self._remote: RemoteCore | None = None

    async def start(self) -> RemoteApplication:
        settings = self._container.settings()
        self.services = await start(self._container)
        self.server = GrpcServer(self.services, GrpcOptions.from_settings(settings, host="127.0.0.1", port=0))
        port = await self.server.start()
        self._remote = RemoteCore(f"127.0.0.1:{port}", api_key=self._core_key, connect_timeout=10.0)
        return await self._remote.start()

    async def stop(self) -> None:
        if self._remote is not None:
            await self._remote.stop()
        if self.server is not None:
            await self.server.stop(0)
        await stop(self._container)


def core_services(client: TestClient) -> Services:
    """The services behind a test app: its own, or (as a gateway) its loopback core's."""
    state = client.app.state  # type: ignore[attr-defined]
    if isinstance(state.services, Services):
        return state.services
    runtime = state.runtime
    assert isinstance(runtime, LoopbackCore) and runtime.services is not None
    return runtime.services
