"""DurableCompletionLog: the chat path's hand-off to the conversation store, loss-free and never in the way.

``submit`` appends the record to a local outbox (fsynced) and returns; a background writer drains the outbox
into the ConversationStore in batches. A database that is down or slow only delays the writer: it retries
with exponential backoff while the queue grows on disk. Writes are idempotent on the completion id, so an
entry written but not yet removed (a crash between the two) is harmless when replayed. A record the
database rejects is isolated from its batch and moved to a dead-letter file with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindfu_adapters.store.codec import record_from_dict, record_to_dict
from mindfu_adapters.store.outbox import Entry, Outbox
from mindfu_core.domain.conversations import CompletionRecord
from mindfu_core.errors import MindFuError, UpstreamUnavailable
from mindfu_core.ports.conversation_store import ConversationStore
from mindfu_core.services.conversations import ConversationService

log = logging.getLogger(__name__)

QUEUE_FILE = "queue.sqlite3"
DEAD_LETTER_FILE = "dead-letter.jsonl"


@dataclass(frozen=True, slots=True, kw_only=True)
class LogPolicy:
    batch_size: int = 500
    linger_s: float = 1.0
    idle_wait_s: float = 0.5
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    shutdown_flush_s: float = 10.0
    retention_interval_s: float = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LogStats:
    """The health of the log: how much waits, for how long, and what went wrong."""

    queue_depth: int
    oldest_age_s: float | None
    written_total: int
    write_failures: int
    dead_lettered: int
    retrying: bool
    last_error: str | None
    last_error_at: str | None  # ISO 8601


class DurableCompletionLog:
    """A ``CompletionLog`` backed by an outbox in ``directory``; ``start`` it, ``aclose`` it."""

    def __init__(
        self,
        directory: Path,
        store: ConversationStore,
        policy: LogPolicy | None = None,
        *,
        retention: ConversationService | None = None,
    ) -> None:
        self.directory = directory
        self.dead_letter_path = directory / DEAD_LETTER_FILE
        self._outbox = Outbox(directory / QUEUE_FILE)
        self._store = store
        self._policy = policy or LogPolicy()
        self._retention = retention
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self._deadline: float | None = None
        self._flushing = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._written = 0
        self._failures = 0
        self._dead = 0
        self._retrying = False
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None

    async def start(self) -> None:
        await self._outbox.open()
        if self._outbox.depth:
            log.info("conversation log: %d completions queued from before; writing them", self._outbox.depth)
        self._tasks.append(asyncio.ensure_future(self._writer()))
        if self._retention is not None and self._retention.retention_days is not None:
            self._tasks.append(asyncio.ensure_future(self._retain()))

    async def submit(self, record: CompletionRecord) -> None:
        payload = json.dumps(record_to_dict(record), ensure_ascii=False, separators=(",", ":"))
        await self._outbox.put(record.id, payload.encode("utf-8"))
        self._wake.set()

    def stats(self) -> LogStats:
        oldest = self._outbox.oldest
        return LogStats(
            queue_depth=self._outbox.depth,
            oldest_age_s=None if oldest is None else max(0.0, time.time() - oldest),
            written_total=self._written,
            write_failures=self._failures,
            dead_lettered=self._dead,
            retrying=self._retrying,
            last_error=self._last_error,
            last_error_at=None if self._last_error_at is None else self._last_error_at.isoformat(),
        )

    async def flush(self, within: float) -> bool:
        """Wait until everything queued so far is written (true) or ``within`` seconds pass (false)."""
        deadline = time.monotonic() + within
        self._flushing += 1
        try:
            while self._outbox.depth:
                if time.monotonic() >= deadline:
                    return False
                self._wake.set()
                await asyncio.sleep(0.01)
            return True
        finally:
            self._flushing -= 1

    # --- the writer ----------------------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self._closing and (self._deadline is None or time.monotonic() >= self._deadline)

    async def _writer(self) -> None:
        backoff = self._policy.retry_initial_s
        while not self._stopping():
            try:
                entries = await self._outbox.peek(self._policy.batch_size)
                if not entries:
                    if self._closing:
                        return
                    await self._sleep(self._policy.idle_wait_s)
                    continue
                if len(entries) < self._policy.batch_size and await self._linger():
                    entries = await self._outbox.peek(self._policy.batch_size)
                await self._write(entries)
            except UpstreamUnavailable as error:
                self._failed(error)
                await self._back_off(backoff)
                backoff = min(backoff * 2, self._policy.retry_max_s)
                continue
            except Exception as error:  # a bug, not the database: say so loudly, keep the entries, go on
                log.exception("conversation log writer failed")
                self._failed(error)
                await self._back_off(backoff)
                backoff = min(backoff * 2, self._policy.retry_max_s)
                continue
            if self._retrying:
                log.info("conversation log: the database is back; %d queued", self._outbox.depth)
            self._retrying = False
            backoff = self._policy.retry_initial_s

    async def _linger(self) -> bool:
        """Let a part batch fill: wait until a batch is full or the oldest entry has waited ``linger_s``
        (not when flushing or closing). One write a second instead of one per chat keeps the writer's CPU
        out of the way of generation on a small machine. True when it waited."""
        waited = False
        while not self._closing and not self._flushing and self._outbox.depth < self._policy.batch_size:
            oldest = self._outbox.oldest
            if oldest is None:
                break
            left = self._policy.linger_s - (time.time() - oldest)
            if left <= 0:
                break
            await self._sleep(left)
            waited = True
        return waited

    def _failed(self, error: Exception) -> None:
        self._failures += 1
        self._last_error = str(error)
        self._last_error_at = datetime.now(UTC)
        if not self._retrying:
            log.warning("conversation log: cannot write (%s); retrying, chats are not affected", error)
        self._retrying = True

    async def _sleep(self, seconds: float) -> None:
        if self._deadline is not None:
            seconds = min(seconds, max(0.0, self._deadline - time.monotonic()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _back_off(self, seconds: float) -> None:
        """Wait before retrying a failed write: new chats do not shorten it, shutdown does (down to what
        is left of the flush deadline)."""
        if self._deadline is not None:
            await asyncio.sleep(min(seconds, max(0.0, self._deadline - time.monotonic())))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    async def _write(self, entries: list[Entry]) -> None:
        records: list[CompletionRecord] = []
        unreadable: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                records.append(record_from_dict(json.loads(entry.payload)))
            except (ValueError, KeyError, TypeError) as error:
                unreadable.append((entry, f"unreadable queue entry: {type(error).__name__}: {error}"))
        for entry, reason in unreadable:
            await self._dead_letter(entry, reason)
        skipped = {entry.seq for entry, _ in unreadable}
        readable = [e for e in entries if e.seq not in skipped]
        try:
            self._written += await self._store.record(records)
        except UpstreamUnavailable:
            raise
        except MindFuError:
            await self._isolate(readable, records)
            return
        await self._outbox.remove([e.seq for e in readable])

    async def _isolate(self, entries: list[Entry], records: list[CompletionRecord]) -> None:
        """The database refused a batch: write its records one by one, dead-lettering the ones it refuses."""
        for entry, record in zip(entries, records, strict=True):
            try:
                self._written += await self._store.record([record])
            except UpstreamUnavailable:
                raise
            except MindFuError as error:
                await self._dead_letter(entry, f"{type(error).__name__}: {error}")
                continue
            await self._outbox.remove([entry.seq])

    async def _dead_letter(self, entry: Entry, reason: str) -> None:
        line: dict[str, Any] = {
            "failed_at": datetime.now(UTC).isoformat(),
            "id": entry.key,
            "reason": reason,
            "entry": entry.payload.decode("utf-8", errors="replace"),
        }
        await asyncio.to_thread(_append_line, self.dead_letter_path, json.dumps(line, ensure_ascii=False))
        self._dead += 1
        log.error("conversation log: completion %s moved to %s: %s", entry.key, self.dead_letter_path, reason)
        await self._outbox.remove([entry.seq])

    async def _retain(self) -> None:
        assert self._retention is not None
        while not self._closing:
            try:
                deleted = await self._retention.apply_retention()
                if deleted:
                    log.info("conversation retention: deleted %d conversations", deleted)
            except MindFuError as error:
                log.warning("conversation retention skipped: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self._policy.retention_interval_s)

    async def aclose(self) -> None:
        """Write what is queued (for up to ``shutdown_flush_s``), then stop; the rest waits on disk."""
        self._closing = True
        self._deadline = time.monotonic() + self._policy.shutdown_flush_s
        self._wake.set()
        self._closed.set()
        for task in self._tasks:
            if not task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(task), self._policy.shutdown_flush_s + 1.0)
                except TimeoutError:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        await self._outbox.close()
        if self._outbox.depth:
            log.warning(
                "conversation log: %d completions left in %s; they are written at the next start",
                self._outbox.depth,
                self._outbox.path,
            )


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
