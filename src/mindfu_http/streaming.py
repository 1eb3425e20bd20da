"""Tie generation to the client connection (a client that goes away stops the work it asked for), and relay
a stream of deltas through an API's event writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any, Protocol, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from mindfu_core.domain.chat import ChatDelta
from mindfu_core.domain.closing import aclose
from mindfu_core.errors import MindFuError
from mindfu_http.errors import domain_error_payload, error_body

log = logging.getLogger(__name__)

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before the work finished."""


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it (and raising ``ClientGone``) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():  # the client left first (or this coroutine was cancelled)
            task.cancel()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
    if not task.done() or task.cancelled():
        # a cancelled task is only done once it has run its cleanup (the engine frees its slot there)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ClientGone
    return task.result()


class ClosingStreamingResponse(StreamingResponse):
    """A streamed response whose body is closed however the response ends. Starlette cancels its send
    loop when the client leaves but does not close the body: an async generator stopped at a ``yield``
    would keep its generation (and the engine slot under it) until the garbage collector finalized it,
    which can take seconds when a traceback holds it in a reference cycle."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._content = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # runs even when the send loop was cancelled
                await aclose(self._content)


def event_stream(
    content: AsyncIterator[bytes], headers: Mapping[str, str] | None = None
) -> StreamingResponse:
    """Server-sent events that no proxy buffers, closed with the connection."""
    return ClosingStreamingResponse(
        content,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )


async def first_and_rest(stream: AsyncIterator[T]) -> tuple[T | None, AsyncIterator[T]]:
    """Pull the first item now (so errors before any output become plain error responses)."""
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        return None, stream
    except BaseException:
        await aclose(stream)
        raise
    return first, stream


class EventWriter(Protocol):
    """Turns one completion's deltas into an API's server-sent events."""

    def start(self) -> list[bytes]: ...

    def delta(self, delta: ChatDelta) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def failure(self, status: int, payload: dict[str, Any], request_id: str) -> list[bytes]:
        """The events that end a stream that failed; ``payload`` is the OpenAI error object."""
        ...


async def relay(
    writer: EventWriter, first: ChatDelta | None, rest: AsyncIterator[ChatDelta], request_id: str
) -> AsyncIterator[bytes]:
    """The stream's events; an error after the first byte ends it with the writer's failure events, and
    the deltas are closed (which stops the engine) however the stream ends."""
    for line in writer.start():
        yield line
    try:
        if first is not None:
            for line in writer.delta(first):
                yield line
        async for delta in rest:
            for line in writer.delta(delta):
                yield line
    except MindFuError as exc:
        status, payload = domain_error_payload(exc, request_id)
        for line in writer.failure(status, payload, request_id):
            yield line
        return
    except Exception:
        log.exception("stream %s failed", request_id)
        payload = error_body(f"The stream failed (request id {request_id}).", "server_error")
        for line in writer.failure(500, payload, request_id):
            yield line
        return
    finally:
        await aclose(rest)
    for line in writer.finish():
        yield line
