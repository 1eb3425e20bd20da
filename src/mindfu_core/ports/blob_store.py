"""The BlobStore port: uploaded files kept by key (a folder in the data directory, or object storage)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (all or nothing)."""
        ...

    def lines(self, key: str) -> Iterator[bytes]:
        """The blob's lines, read lazily; ``NotFound`` when there is none."""
        ...

    def delete(self, key: str) -> None: ...
