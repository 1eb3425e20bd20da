"""The one channel a gateway holds to its core: per-call credentials and deadline, and the core's statuses
turned back into the domain errors they stand for."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from mindfu_core.services.auth import presented_credentials
from mindfu_grpc.errors import error_from_rpc

T = TypeVar("T")
Metadata = tuple[tuple[str, str], ...]


class Channel:
    """One channel to the core, shared by every stub; per-call credentials, deadline and error mapping."""

    def __init__(self, target: str, *, api_key: str | None, timeout: float, max_message_bytes: int) -> None:
        self.target = target
        self._api_key = api_key
        self.timeout = timeout
        self.channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.keepalive_time_ms", 30_000),
                # a core that went away is tried again within a second or two once it is back
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2_000),
            ],
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The credentials a call presents: those the edge's caller presented, else the gateway's own key."""
        authorization = presented_credentials.get()
        if authorization is None and self._api_key:
            authorization = f"Bearer {self._api_key}"
        return (("authorization", authorization),) if authorization else ()

    async def call(
        self, method: Callable[..., Awaitable[T]], request: Any, *, metadata: Metadata | None = None
    ) -> T:
        """``method(request)`` presenting ``metadata`` (default: ``metadata()``); a failure raises the
        domain error it stands for."""
        try:
            return await method(
                request, metadata=self.metadata() if metadata is None else metadata, timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            raise error_from_rpc(error, target=self.target) from None

    def failure(self, error: grpc.aio.AioRpcError) -> Exception:
        return error_from_rpc(error, target=self.target)

    async def close(self) -> None:
        await self.channel.close()


async def stream_pieces(call: Any, channel: Channel) -> AsyncGenerator[Any, None]:
    """The messages of a server stream; cancels the call when the reader stops early (client gone)."""
    try:
        while True:
            try:
                message = await call.read()
            except grpc.aio.AioRpcError as error:
                raise channel.failure(error) from None
            if message is grpc.aio.EOF:
                return
            yield message
    finally:
        if not call.done():
            call.cancel()
