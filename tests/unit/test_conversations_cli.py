"""``mindfu conversations``, run in this process: over the data directory's SQLite, and through a server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from dependency_injector import providers

from mindfu_adapters.container import build_container
from mindfu_adapters.settings import Settings
from mindfu_adapters.store.conversations import SqlConversationStore
from mindfu_adapters.store.sql import Database
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_cli.main import main
from mindfu_core.domain.conversations import CompletionRecord, CompletionStatus
from mindfu_http.app import create_app
from tests.e2e.server import free_port
from tests.fakes import HashEmbedder, ScriptedEngine
from tests.unit.test_conversations_http import TOOLS, record, tool_conversation, user


def seed(data: Path, *records: CompletionRecord) -> None:
    async def write() -> None:
        database = Database(Settings(data_dir=data).database_url())
        await database.migrate()
        try:
            await SqlConversationStore(database).record(records)
        finally:
            await database.aclose()

    asyncio.run(write())


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory holding conv_tools (a tool call), conv_small and conv_failed, oldest to newest."""
    monkeypatch.setenv("MINDFU_DATA_DIR", str(tmp_path))
    seed(
        tmp_path,
        *tool_conversation(),
        record(3, (user("hello there"),), conversation="conv_small", model="small", user_name="bob"),
        record(4, (user("boom"),), conversation="conv_failed", status=CompletionStatus.ERROR),
    )
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["conversations", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_show(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    rows = out.splitlines()
    assert rows[0].startswith("ID") and [row.split()[0] for row in rows[1:]] == [
        "conv_failed",
        "conv_small",
        "conv_tools",
    ]
    assert "weather in Paris?" in rows[3]

    code, out, _ = run(capsys, "list", "--limit", "2", "--json")
    page = json.loads(out)
    assert [c["id"] for c in page["data"]] == ["conv_failed", "conv_small"] and page["has_more"]
    code, out, _ = run(capsys, "list", "--after", page["next_cursor"], "--json")
    assert [c["id"] for c in json.loads(out)["data"]] == ["conv_tools"]

    assert "(more: --after " in run(capsys, "list", "--limit", "1")[1]
    assert [c["id"] for c in json.loads(run(capsys, "list", "--model", "small", "--json")[1])["data"]] == [
        "conv_small"
    ]
    filtered = json.loads(run(capsys, "list", "--status", "error", "--user", "alice", "--json")[1])["data"]
    assert [c["id"] for c in filtered] == ["conv_failed"]
    since = json.loads(run(capsys, "list", "--since", "2026-01-01T00:03:00", "--json")[1])["data"]
    assert [c["id"] for c in since] == ["conv_failed", "conv_small"]

    code, out, _ = run(capsys, "show", "conv_tools")
    assert code == 0
    assert "conv_tools  smollm2  5 messages, 2 completions, last ok, unrated" in out
    assert "[user] weather in Paris?" in out and '-> weather({"city": "Paris"})' in out
    assert '[tool call_1] {"temp": 21}' in out
    shown = json.loads(run(capsys, "show", "conv_tools", "--json")[1])
    assert shown["tools"] == TOOLS and len(shown["completions"]) == 2


def test_feedback_and_delete(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "feedback", "conv_tools", "--rating", "5", "--comment", "great")
    assert code == 0 and out.startswith("rated conv_tools: 5")
    code, out, _ = run(capsys, "feedback", "conv_tools", "--rating", "1", "--completion", "chatcmpl-0001")
    assert code == 0
    shown = json.loads(run(capsys, "show", "conv_tools", "--json")[1])
    assert shown["rating"] == 1
    assert [(f["rating"], f["comment"], f["completion_id"]) for f in shown["feedback"]] == [
        (5, "great", None),
        (1, None, "chatcmpl-0001"),
    ]
    assert [c["id"] for c in json.loads(run(capsys, "list", "--rated", "--json")[1])["data"]] == [
        "conv_tools"
    ]
    assert len(json.loads(run(capsys, "list", "--unrated", "--json")[1])["data"]) == 2

    code, _, err = run(capsys, "feedback", "conv_tools", "--rating", "9")
    assert code == 1 and err.startswith("mindfu: rating must be")
    code, _, err = run(capsys, "feedback", "conv_missing", "--rating", "1")
    assert code == 1 and "conv_missing" in err

    code, out, _ = run(capsys, "delete", "conv_small")
    assert code == 0 and out.strip() == "deleted conv_small"
    code, _, err = run(capsys, "show", "conv_small")
    assert code == 1 and err.startswith("mindfu: No conversation with id 'conv_small'")
    assert run(capsys, "delete", "conv_small")[0] == 1


def test_export(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "export")
    assert code == 0 and err == ""
    examples = [json.loads(line) for line in out.splitlines()]
    assert len(examples) == 2  # conv_failed has no assistant message
    assert examples[0]["tools"] == TOOLS
    assert examples[0]["messages"][2]["tool_calls"][0]["id"] == "call_1"
    assert examples[1] == {
        "messages": [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "answer 3"}]
    }

    target = data / "out" / "train.jsonl"
    target.parent.mkdir()
    code, out, err = run(capsys, "export", "-o", str(target), "--min-turns", "2")
    assert code == 0 and out == ""
    assert "exported 1 conversations" in err
    (line,) = target.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["tools"] == TOOLS
    assert list(target.parent.iterdir()) == [target]  # the partial file was moved into place

    code, _, _ = run(capsys, "export", "-o", str(target), "--quiet", "--model", "nothing")
    assert code == 0 and target.read_text() == ""
    code, out, _ = run(capsys, "export", "--min-response-chars", "1")  # a tool call has no text
    assert [json.loads(x)["messages"][0]["content"] for x in out.splitlines()] == ["hello there"]

    code, _, err = run(capsys, "export", "--since", "last week")
    assert code == 2 and "--since is not an ISO 8601" in err


@pytest.fixture
def server(data: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server over the same data directory, in a thread of this process."""
    settings = Settings(data_dir=data, api_keys="secret", conversations={"enabled": False})  # type: ignore[arg-type]
    container = build_container(settings)
    container.llm_engine.override(providers.Object(ScriptedEngine()))
    container.embedder.override(providers.Object(HashEmbedder()))
    container.vector_store.override(providers.Object(InMemoryVectorStore()))
    port = free_port()
    config = uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_level="warning")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not served.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    monkeypatch.setenv("MINDFU_API_KEY", "secret")
    monkeypatch.setenv("MINDFU_DATA_DIR", str(data / "unused"))  # everything must go through the server
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        thread.join(timeout=30)


def test_through_a_server(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = ("--server", server)
    listed = json.loads(run(capsys, "list", "--json", "--limit", "2", *remote)[1])
    assert [c["id"] for c in listed["data"]] == ["conv_failed", "conv_small"]
    rest = json.loads(run(capsys, "list", "--json", "--after", listed["next_cursor"], *remote)[1])
    assert [c["id"] for c in rest["data"]] == ["conv_tools"]
    assert "weather in Paris?" in run(capsys, "show", "conv_tools", *remote)[1]

    code, out, _ = run(capsys, "feedback", "conv_small", "--rating", "-1", *remote)
    assert code == 0 and out.startswith("rated conv_small: -1")
    code, _, err = run(capsys, "feedback", "conv_small", "--rating", "7", *remote)
    assert code == 1 and err.startswith("mindfu: rating must be")

    code, out, _ = run(capsys, "export", "--unrated", *remote)
    assert code == 0
    (example,) = [json.loads(line) for line in out.splitlines()]
    assert example["tools"] == TOOLS
    target = tmp_path / "remote.jsonl"
    code, _, err = run(capsys, "export", "-o", str(target), "--since", "2026-01-01T00:03:00Z", *remote)
    assert code == 0 and "exported 1 conversations" in err
    assert "hello there" in target.read_text(encoding="utf-8")

    code, out, _ = run(capsys, "delete", "conv_small", *remote)
    assert code == 0 and "deleted conv_small" in out
    code, _, err = run(capsys, "show", "conv_small", *remote)
    assert code == 1 and "No conversation with id 'conv_small'" in err

    monkeypatch.setenv("MINDFU_API_KEY", "wrong")
    code, _, err = run(capsys, "list", *remote)
    assert code == 1 and err.startswith("mindfu: ")
    code, _, err = run(capsys, "export", *remote)
    assert code == 1 and err.startswith("mindfu: ")
    code, _, err = run(capsys, "list", "--server", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach" in err
