"""DurableCompletionLog: the queue survives restarts and outages, replays never duplicate, and what the
database refuses goes to the dead-letter file instead of away."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mindfu_adapters.store.codec import record_to_dict
from mindfu_adapters.store.conversation_log import (
    DEAD_LETTER_FILE,
    QUEUE_FILE,
    DurableCompletionLog,
    LogPolicy,
)
from mindfu_adapters.store.conversations import SqlConversationStore
from mindfu_adapters.store.sql import Database
from mindfu_core.domain.chat import Message, Role
from mindfu_core.domain.conversations import CompletionRecord
from mindfu_core.errors import InvalidRequest, UpstreamUnavailable
from tests.postgres import fresh_database

FAST = LogPolicy(
    batch_size=50, idle_wait_s=0.05, retry_initial_s=0.01, retry_max_s=0.05, shutdown_flush_s=2.0
)


def record(number: int, text: str = "hello") -> CompletionRecord:
    return CompletionRecord(
        id=f"chatcmpl-{number:05d}",
        conversation_id=f"conv_{number:05d}",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        model="m",
        messages=(Message(role=Role.USER, content=text),),
        responses=(Message(role=Role.ASSISTANT, content="reply"),),
    )


class FlakyStore:
    """Writes into a real store, failing as told: down for a number of calls, or refusing some ids."""

    def __init__(self, inner: SqlConversationStore, *, down_for: int = 0, refuse: Sequence[str] = ()) -> None:
        self.inner = inner
        self.down_for = down_for
        self.refuse = set(refuse)
        self.calls = 0

    async def record(self, records: Sequence[CompletionRecord]) -> int:
        self.calls += 1
        if self.calls <= self.down_for:
            raise UpstreamUnavailable("the database is down (scripted)")
        if any(r.id in self.refuse for r in records):
            raise InvalidRequest("the database refused it (scripted)")
        return await self.inner.record(records)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture
async def sql_store(tmp_path: Path) -> SqlConversationStore:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    await database.migrate()
    return SqlConversationStore(database)


async def completion_ids(store: SqlConversationStore) -> list[str]:
    ids = []
    async for conversation in store.export():
        full = await store.get(conversation.id)
        assert full is not None
        ids.extend(c.id for c in full.completions)
    return sorted(ids)


async def test_an_outage_delays_writes_and_loses_nothing(
    tmp_path: Path, sql_store: SqlConversationStore
) -> None:
    store = FlakyStore(sql_store, down_for=5)
    log = DurableCompletionLog(tmp_path / "spool", store, FAST)  # type: ignore[arg-type]
    await log.start()
    for number in range(20):
        await log.submit(record(number))
    assert await log.flush(10.0)
    stats = log.stats()
    assert stats.write_failures == 5 and stats.queue_depth == 0 and stats.written_total == 20
    assert stats.last_error is not None and "down" in stats.last_error
    await log.aclose()
    assert await completion_ids(sql_store) == [record(n).id for n in range(20)]


async def test_what_is_queued_at_shutdown_is_written_at_the_next_start(
    tmp_path: Path, sql_store: SqlConversationStore
) -> None:
    down = FlakyStore(sql_store, down_for=10**9)
    policy = LogPolicy(
        batch_size=50, idle_wait_s=0.05, retry_initial_s=0.01, retry_max_s=0.05, shutdown_flush_s=0.2
    )
    log = DurableCompletionLog(tmp_path / "spool", down, policy)  # type: ignore[arg-type]
    await log.start()
    for number in range(30):
        await log.submit(record(number))
    await log.aclose()
    assert log.stats().queue_depth == 30
    assert await completion_ids(sql_store) == []

    again = DurableCompletionLog(tmp_path / "spool", sql_store, FAST)
    await again.start()
    assert await again.flush(10.0)
    await again.aclose()
    assert await completion_ids(sql_store) == [record(n).id for n in range(30)]


async def test_a_replayed_queue_writes_nothing_twice(tmp_path: Path, sql_store: SqlConversationStore) -> None:
    """A crash after the database commit but before the queue forgets the entries replays them."""
    log = DurableCompletionLog(tmp_path / "spool", sql_store, FAST)
    await log.start()
    for number in range(10):
        await log.submit(record(number))
    assert await log.flush(10.0)
    await log.aclose()
    queue = sqlite3.connect(tmp_path / "spool" / QUEUE_FILE)  # put the written entries back, as a crash would
    queue.executemany(
        "INSERT INTO entries (key, payload, enqueued_at) VALUES (?, ?, 0)",
        [(r.id, json.dumps(record_to_dict(r)).encode()) for r in map(record, range(10))],
    )
    queue.commit()
    queue.close()
    replay = DurableCompletionLog(tmp_path / "spool", sql_store, FAST)
    await replay.start()
    assert await replay.flush(10.0)
    assert replay.stats().written_total == 0
    await replay.aclose()
    assert await completion_ids(sql_store) == [record(n).id for n in range(10)]


async def test_a_refused_record_goes_to_the_dead_letter_file(
    tmp_path: Path, sql_store: SqlConversationStore
) -> None:
    bad = record(3)
    store = FlakyStore(sql_store, refuse=[bad.id])
    log = DurableCompletionLog(tmp_path / "spool", store, FAST)  # type: ignore[arg-type]
    await log.start()
    for number in range(6):
        await log.submit(record(number))
    assert await log.flush(10.0)
    await log.aclose()
    assert log.stats().dead_lettered == 1
    assert await completion_ids(sql_store) == [record(n).id for n in range(6) if n != 3]
    (line,) = (tmp_path / "spool" / DEAD_LETTER_FILE).read_text().splitlines()
    letter = json.loads(line)
    assert letter["id"] == bad.id and "refused" in letter["reason"]
    assert json.loads(letter["entry"])["id"] == bad.id  # the whole record, to fix and replay by hand


async def test_an_unreadable_entry_goes_to_the_dead_letter_file(
    tmp_path: Path, sql_store: SqlConversationStore
) -> None:
    log = DurableCompletionLog(tmp_path / "spool", sql_store, FAST)
    await log.start()
    await log._outbox.put("garbage", b"{not json")
    await log.submit(record(1))
    assert await log.flush(10.0)
    await log.aclose()
    assert await completion_ids(sql_store) == [record(1).id]
    assert "unreadable" in (tmp_path / "spool" / DEAD_LETTER_FILE).read_text()


async def test_postgresql_refusing_a_text_dead_letters_only_that_record(tmp_path: Path) -> None:
    async with fresh_database() as url:
        database = Database(url)
        await database.migrate()
        store = SqlConversationStore(database)
        log = DurableCompletionLog(tmp_path / "spool", store, FAST)
        await log.start()
        await log.submit(record(1))
        await log.submit(record(2, "a NUL \x00 byte, which PostgreSQL text cannot hold"))
        await log.submit(record(3))
        assert await log.flush(10.0)
        await log.aclose()
        assert log.stats().dead_lettered == 1
        assert await completion_ids(store) == [record(1).id, record(3).id]
        assert "rejected" in (tmp_path / "spool" / DEAD_LETTER_FILE).read_text()
        await database.aclose()


class CountingStore(FlakyStore):
    def __init__(self, inner: SqlConversationStore) -> None:
        super().__init__(inner)
        self.batches: list[int] = []

    async def record(self, records: Sequence[CompletionRecord]) -> int:
        self.batches.append(len(records))
        return await super().record(records)


async def test_the_writer_lets_a_part_batch_fill_before_writing(
    tmp_path: Path, sql_store: SqlConversationStore
) -> None:
    store = CountingStore(sql_store)
    policy = LogPolicy(batch_size=50, linger_s=0.5, idle_wait_s=0.05, shutdown_flush_s=2.0)
    log = DurableCompletionLog(tmp_path / "spool", store, policy)  # type: ignore[arg-type]
    await log.start()
    for number in range(5):
        await log.submit(record(number))
    for _ in range(200):  # no flush: the writer's own pace
        if log.stats().written_total == 5:
            break
        await asyncio.sleep(0.02)
    assert store.batches == [5]
    await log.aclose()


async def test_flush_and_a_full_batch_do_not_wait_for_the_linger(
    tmp_path: Path, sql_store: SqlConversationStore
) -> None:
    store = CountingStore(sql_store)
    policy = LogPolicy(batch_size=4, linger_s=3600.0, idle_wait_s=0.05, shutdown_flush_s=2.0)
    log = DurableCompletionLog(tmp_path / "spool", store, policy)  # type: ignore[arg-type]
    await log.start()
    for number in range(4):
        await log.submit(record(number))
    for _ in range(200):
        if log.stats().written_total == 4:
            break
        await asyncio.sleep(0.02)
    assert store.batches == [4]  # a full batch goes at once
    await log.submit(record(10))
    assert await log.flush(5.0)  # a part batch goes when flushed
    assert store.batches == [4, 1]
    await log.aclose()
    assert await completion_ids(sql_store) == sorted([record(n).id for n in (0, 1, 2, 3, 10)])


def test_a_record_spooled_before_cached_tokens_were_kept_still_reads() -> None:
    """The spool outlives upgrades: a record written by a MindFu that kept two usage counts reads back with
    none cached; a new one keeps its cached tokens."""
    from dataclasses import replace

    from mindfu_adapters.store.codec import record_from_dict
    from mindfu_core.domain.chat import Usage

    new = replace(record(1), usage=Usage(prompt_tokens=30, completion_tokens=4, cached_tokens=25))
    assert record_from_dict(json.loads(json.dumps(record_to_dict(new)))).usage == new.usage
    old = record_to_dict(new)
    old["usage"] = [30, 4]
    assert record_from_dict(old).usage == Usage(prompt_tokens=30, completion_tokens=4)
