"""Outbox: a durable first-in first-out queue of byte payloads in a local SQLite file.

``put`` returns once the entry is on disk (WAL with ``synchronous=FULL``: the commit is fsynced), so
whatever a caller acknowledges after ``put`` survives a crash or a SIGKILL. Concurrent puts share one commit
(group commit): under load the fsync is paid once per batch, not once per entry. Every SQLite call runs on
one dedicated thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mindfu_core.errors import UpstreamUnavailable

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_at REAL NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    key: str
    payload: bytes
    enqueued_at: float  # unix seconds


class Outbox:
    """Open with ``await open()``; ``put`` appends durably, ``peek`` and ``remove`` drain in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mindfu-outbox")
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, bytes, float, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.depth = 0
        self.oldest: float | None = None  # enqueue time of the oldest entry

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        except (sqlite3.Error, OSError) as error:
            raise UpstreamUnavailable(f"the conversation log queue {self.path} failed: {error}") from error

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.depth, self.oldest = await self._call(self._open)

    def _open(self) -> tuple[int, float | None]:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        self._db = db
        count, oldest = db.execute("SELECT count(*), min(enqueued_at) FROM entries").fetchone()
        return int(count), oldest

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the outbox is not open")
        return self._db

    async def put(self, key: str, payload: bytes) -> None:
        """Append an entry; returns when it is durable."""
        if self._closed:
            raise UpstreamUnavailable("the conversation log is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((key, payload, time.time(), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [(key, payload, when) for key, payload, when, _ in batch]
            try:
                await self._call(self._insert, rows)
            except BaseException as error:  # every waiter hears of it; nothing claims durability
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(
                            error if isinstance(error, Exception) else UpstreamUnavailable(str(error))
                        )
                if not isinstance(error, Exception):
                    raise
                continue
            self.depth += len(rows)
            if self.oldest is None:
                self.oldest = rows[0][2]
            for *_, future in batch:
                if not future.done():
                    future.set_result(None)

    def _insert(self, rows: list[tuple[str, bytes, float]]) -> None:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO entries (key, payload, enqueued_at) VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def peek(self, limit: int) -> list[Entry]:
        """The oldest ``limit`` entries, left in place until ``remove``."""
        return await self._call(self._peek, limit)

    def _peek(self, limit: int) -> list[Entry]:
        rows = self._connection().execute(
            "SELECT seq, key, payload, enqueued_at FROM entries ORDER BY seq LIMIT ?", (limit,)
        )
        return [Entry(seq, key, bytes(payload), when) for seq, key, payload, when in rows]

    async def remove(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        removed, oldest = await self._call(self._remove, list(seqs))
        self.depth = max(0, self.depth - removed)
        self.oldest = oldest

    def _remove(self, seqs: list[int]) -> tuple[int, float | None]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            removed = db.executemany("DELETE FROM entries WHERE seq = ?", [(s,) for s in seqs]).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        # the oldest entry by its key (an index lookup), never a scan of the whole queue
        first = db.execute("SELECT enqueued_at FROM entries ORDER BY seq LIMIT 1").fetchone()
        return int(removed), None if first is None else first[0]

    async def close(self) -> None:
        """Finish the puts in progress, then close the file (entries stay on disk for the next open)."""
        self._closed = True
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._db is not None:
            await self._call(self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
