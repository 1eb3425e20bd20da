"""Closing what may hold resources: async generators and streams have ``aclose``, plain async iterators do
not; the check is by type, never by probing a name."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


async def aclose(value: object) -> None:
    """``value.aclose()`` where it has one (an async generator, a ``ChatStream``); nothing otherwise."""
    if isinstance(value, AsyncClosable):
        await value.aclose()
