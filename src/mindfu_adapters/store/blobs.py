"""LocalBlobStore: uploaded files as files in a folder of the data directory, written atomically."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from mindfu_core.errors import InvalidRequest, NotFound

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class LocalBlobStore:
    """The BlobStore port on a local folder."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key) or key.startswith("."):
            raise InvalidRequest(f"not a valid file id: {key!r}")
        return self._root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self._root.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)

    def lines(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.exists():
            raise NotFound(f"the content of file {key!r} is missing", param="file_id")
        with path.open("rb") as source:
            yield from source

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
