"""A streamed response closes its body however it ends: the body's ``finally`` (which cancels the engine's
work and frees its slot) has run by the time the response returns, whether the client left while the body
waited for its next item or while its last chunk was being sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from mindfu_http.streaming import ClosingStreamingResponse, event_stream

SCOPES = [
    {"type": "http", "asgi": {"spec_version": "2.3"}},  # Starlette listens for http.disconnect
    {"type": "http", "asgi": {"spec_version": "2.4"}},  # Starlette learns of it from a failing send
]


class Body:
    """An endless event stream that records whether it was closed."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.sent = 0
        self.closed = False

    async def events(self) -> AsyncIterator[bytes]:
        try:
            while True:
                await asyncio.sleep(self.pause)
                self.sent += 1
                yield b"data: {}\n\n"
        finally:
            await asyncio.sleep(0)  # cleanup that awaits, as the engine's does
            self.closed = True


def client(leave_after: int) -> tuple[Any, Any]:
    """``receive`` and ``send`` of a client that leaves once it has ``leave_after`` body chunks."""
    received: list[dict[str, Any]] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if gone.is_set():
            raise OSError("the client is gone")
        received.append(message)
        if sum(m["type"] == "http.response.body" for m in received) >= leave_after:
            gone.set()
        await asyncio.sleep(0.01)  # the socket write yields, as uvicorn's does

    return receive, send


@pytest.mark.parametrize("scope", SCOPES, ids=["listens", "send-fails"])
@pytest.mark.parametrize("pause", [0.0, 0.05], ids=["leaves-while-sending", "leaves-while-waiting"])
async def test_a_client_that_leaves_has_the_body_closed_before_the_response_returns(
    scope: dict[str, Any], pause: float
) -> None:
    body = Body(pause)
    receive, send = client(leave_after=3)
    response = event_stream(body.events())
    # Starlette's spec-2.4 path turns the failed send into ClientDisconnect; uvicorn drops it
    with contextlib.suppress(ClientDisconnect):
        await asyncio.wait_for(response(scope, receive, send), timeout=5)
    assert body.closed, f"the body was left open after {body.sent} events"


async def test_a_stream_that_ends_normally_is_closed_once() -> None:
    closes = 0

    async def lines() -> AsyncIterator[bytes]:
        nonlocal closes
        try:
            yield b"one\n"
            yield b"two\n"
        finally:
            closes += 1

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    response = ClosingStreamingResponse(lines(), media_type="application/x-ndjson")
    await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    assert [m.get("body") for m in sent if m["type"] == "http.response.body"][:2] == [b"one\n", b"two\n"]
    assert closes == 1
