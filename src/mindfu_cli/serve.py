"""``mindfu serve``: HTTP and gRPC in one process (``--role all``), gRPC alone (``core``), or the HTTP
facade over a remote core (``gateway``)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import sys
from typing import TYPE_CHECKING

from mindfu_core.errors import ConfigurationError, MindFuError

if TYPE_CHECKING:
    from mindfu_adapters.settings import Settings
    from mindfu_core.application import Application
    from mindfu_grpc.server import GrpcOptions
    from mindfu_http.app import Runtime

log = logging.getLogger("mindfu")
ROLES = ("all", "core", "gateway")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WithGrpc:
    """A runtime that also serves its application over gRPC while it runs (``--role all``)."""

    def __init__(self, inner: Runtime, options: GrpcOptions) -> None:
        self._inner = inner
        self._options = options
        self._server: object | None = None

    async def start(self) -> Application:
        from mindfu_grpc.server import GrpcServer

        application = await self._inner.start()
        server = GrpcServer(application, self._options)
        await server.start()
        self._server = server
        return application

    async def stop(self) -> None:
        from mindfu_grpc.server import GrpcServer

        if isinstance(self._server, GrpcServer):
            await self._server.stop()
            self._server = None
        await self._inner.stop()


def _warn_if_open(settings: Settings, host: str, what: str) -> None:
    if not settings.all_api_keys() and not is_loopback(host):
        log.warning(
            "binding %s to %s with no API keys: anyone who can reach this address can use MindFu. "
            "Set MINDFU_API_KEYS or MINDFU_API_KEYS_FILE.",
            what,
            host,
        )


def serve(
    *,
    host: str | None,
    port: int | None,
    log_level: str | None,
    role: str = "all",
    grpc_port: int | None = None,
    grpc_host: str | None = None,
    core: str | None = None,
) -> int:
    from mindfu_adapters.settings import Settings

    settings = Settings()
    level = (log_level or settings.log_level).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings.all_api_keys()
    except OSError as exc:
        print(f"mindfu: cannot read the API keys file: {exc}", file=sys.stderr)
        return 2
    try:
        if role == "core":
            return _serve_core(settings, grpc_host, grpc_port)
        return _serve_http(
            settings, host, port, level, role=role, grpc_host=grpc_host, grpc_port=grpc_port, core=core
        )
    except ConfigurationError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 2


def _serve_http(
    settings: Settings,
    host: str | None,
    port: int | None,
    level: str,
    *,
    role: str,
    grpc_host: str | None,
    grpc_port: int | None,
    core: str | None,
) -> int:
    import uvicorn

    from mindfu_adapters.container import build_container, preflight
    from mindfu_grpc.server import GrpcOptions
    from mindfu_http.app import InProcess, create_app

    bind_host = host or settings.http.host
    bind_port = settings.http.port if port is None else port
    _warn_if_open(settings, bind_host, "HTTP")
    container = build_container(settings)
    runtime: Runtime
    if role == "gateway":
        from mindfu_grpc.client import RemoteCore

        address = core or settings.core.address
        if not address:
            raise ConfigurationError("a gateway needs its core: --core HOST:PORT or MINDFU_CORE__ADDRESS")
        # the key presented to the core when a request brings none: its own setting, else the first key
        keys = settings.all_api_keys()
        key = (
            settings.core.api_key.get_secret_value() if settings.core.api_key else (keys[0] if keys else None)
        )
        runtime = RemoteCore(
            address,
            api_key=key,
            timeout=settings.core.timeout_s,
            connect_timeout=settings.core.connect_timeout_s,
            max_message_bytes=settings.grpc.max_message_bytes,
            anonymous_as_own_key=not keys,
        )
    else:
        preflight(settings)
        runtime = InProcess(container)
        if settings.grpc.enabled:
            options = GrpcOptions.from_settings(settings, host=grpc_host, port=grpc_port)
            _warn_if_open(settings, options.host, "gRPC")
            runtime = WithGrpc(runtime, options)
    app = create_app(container, runtime=runtime)
    config = uvicorn.Config(app, host=bind_host, port=bind_port, log_level=level.lower(), access_log=False)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


def _serve_core(settings: Settings, grpc_host: str | None, grpc_port: int | None) -> int:
    from mindfu_adapters.container import build_container, preflight
    from mindfu_adapters.services import start, stop
    from mindfu_grpc.server import GrpcOptions, GrpcServer

    preflight(settings)
    options = GrpcOptions.from_settings(settings, host=grpc_host, port=grpc_port)
    _warn_if_open(settings, options.host, "gRPC")
    container = build_container(settings)

    async def run() -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        try:
            application = await start(container)
            server = GrpcServer(application, options)
            await server.start()
        except MindFuError as exc:
            await stop(container)
            print(f"mindfu: {exc.message}", file=sys.stderr)
            return 2
        except BaseException:
            await stop(container)
            raise
        log.info("core ready: gRPC on %s:%d", options.host, server.port)
        try:
            await stopping.wait()
        finally:
            log.info("core stopping")
            await server.stop()
            await stop(container)
        return 0

    try:  # the event loop uvicorn picks for the HTTP roles: less CPU per streamed token than asyncio's
        import uvloop
    except ImportError:
        return asyncio.run(run())
    return uvloop.run(run())
