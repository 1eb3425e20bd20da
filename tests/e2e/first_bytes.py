"""A pass-through HTTP proxy that times, for every request a client sends, how long the server took to send
its first bytes (status line, headers and the first body chunk): what an agent waits before it sees that
its request was taken. Streams are passed on chunk by chunk, and a client that leaves closes the upstream
request too."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.e2e.server import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


@dataclass
class Exchange:
    method: str
    path: str
    streamed: bool  # the request asked for a stream
    status: int
    first_bytes_s: float  # request fully received -> headers and first body chunk from the server


@dataclass
class Proxy:
    url: str
    exchanges: list[Exchange] = field(default_factory=list)


def _app(upstream: str, proxy: Proxy) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(None))

    async def forward(request: Request) -> StreamingResponse:
        body = await request.body()
        started = time.monotonic()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        outgoing = client.build_request(
            request.method, request.url.path, params=request.query_params, headers=headers, content=body
        )
        response = await client.send(outgoing, stream=True)
        chunks = response.aiter_raw()
        first = b""
        async for first in chunks:
            if first:
                break
        proxy.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                streamed=b'"stream":true' in body.replace(b" ", b""),
                status=response.status_code,
                first_bytes_s=time.monotonic() - started,
            )
        )

        async def rest() -> AsyncIterator[bytes]:
            yield first
            async for chunk in chunks:
                yield chunk

        passed = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        return StreamingResponse(
            rest(),
            status_code=response.status_code,
            headers=passed,
            background=BackgroundTask(response.aclose),
        )

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


@contextmanager
def timing_proxy(upstream: str) -> Iterator[Proxy]:
    """A proxy in front of ``upstream`` (``http://host:port``) on a free local port, in a thread."""
    port = free_port()
    proxy = Proxy(url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(_app(upstream, proxy), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the timing proxy did not start"
        time.sleep(0.02)
    try:
        yield proxy
    finally:
        server.should_exit = True
        thread.join(timeout=10)
