"""``mindfu ingest``, ``documents`` and ``db`` as users run them: in process and through a server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.server import MINDFU, data_env, running_server
from tests.fixtures.documents import make_pdf

pytestmark = pytest.mark.slow


def run(*args: str, data: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **data_env(data)}
    return subprocess.run([MINDFU, *args], capture_output=True, text=True, timeout=timeout, env=env)


def make_tree(root: Path) -> Path:
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "guide.md").write_text("# Guide\n\nThe Brimstone valve opens at dawn.\n")
    (root / "docs" / "deep" / "tool.py").write_text("def brimstone():\n    return 'valve'\n")
    (root / "docs" / "deep" / "manual.pdf").write_bytes(make_pdf(["Manual page one.", "Page two text."]))
    (root / "docs" / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (root / "docs" / ".hidden.md").write_text("never ingested")
    return root / "docs"


def test_ingest_list_show_delete_in_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    docs = make_tree(tmp_path)
    first = run("ingest", str(docs), "--collection", "kb", data=data)
    assert first.returncode == 1, first.stderr  # the binary file fails; the rest is added
    assert "3 added, 0 duplicate, 1 failed (4 files)" in first.stdout
    assert "blob.bin" in first.stdout and "not a supported document" in first.stdout
    assert ".hidden" not in first.stdout

    globs = ["--include", "*.md", "--include", "*.py"]
    again = run("ingest", str(docs), *globs, "--collection", "kb", data=data)
    assert again.returncode == 0, again.stderr
    assert "0 added, 2 duplicate, 0 failed (2 files)" in again.stdout

    listed = run("documents", "list", "--json", data=data)
    documents = json.loads(listed.stdout)
    assert sorted(d["name"] for d in documents) == ["guide.md", "manual.pdf", "tool.py"]
    assert all(d["collection"] == "kb" for d in documents)
    pdf = next(d for d in documents if d["name"] == "manual.pdf")
    assert pdf["metadata"]["path"].endswith("manual.pdf")

    shown = json.loads(run("documents", "show", pdf["id"], data=data).stdout)
    assert shown["id"] == pdf["id"] and shown["media_type"] == "application/pdf"
    deleted = run("documents", "delete", pdf["id"], data=data)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    missing = run("documents", "show", pdf["id"], data=data)
    assert missing.returncode == 1 and "no document" in missing.stderr

    assert "at revision 0006" in run("db", "current", data=data).stdout
    history = run("db", "history", data=data).stdout
    assert "0001  The document registry." in history and "0002  Conversation logging" in history
    assert "0003  Fine-tuning" in history and "<- current" in history.splitlines()[5]
    assert "0004  Conversation logging: how many prompt tokens" in history
    assert "0005  Fine-tuning: leases" in history and "0006  Keys and tenants" in history
    downgraded = run("db", "downgrade", "0001", data=data)
    assert downgraded.returncode == 0 and "at revision 0001" in downgraded.stdout
    assert "at revision 0006" in run("db", "upgrade", data=data).stdout


def test_ingest_through_a_running_server(tmp_path: Path) -> None:
    """The same commands over the server's REST API and over its gRPC services."""
    docs = make_tree(tmp_path)
    with running_server(tmp_path) as server:
        rest, grpc = server.url, f"grpc://127.0.0.1:{server.grpc_port}"
        result = run("ingest", str(docs / "guide.md"), "--server", rest, "--quiet", data=tmp_path / "x")
        assert result.returncode == 0, result.stderr
        assert "1 added" in result.stdout
        again = run("ingest", str(docs / "guide.md"), "--server", grpc, "--quiet", data=tmp_path / "x")
        assert again.returncode == 0 and "0 added, 1 duplicate" in again.stdout, again.stderr
        listings = [
            run("documents", "list", "--server", url, data=tmp_path / "x").stdout for url in (rest, grpc)
        ]
        assert "guide.md" in listings[0] and listings[0] == listings[1]
        shown = [
            json.loads(run("documents", "list", "--json", "--server", url, data=tmp_path / "x").stdout)
            for url in (rest, grpc)
        ]
        assert shown[0] == shown[1] and shown[0][0]["name"] == "guide.md"
        chats = [
            run("chat", "Say hello", "--max-tokens", "4", "--server", url, data=tmp_path / "x")
            for url in (rest, grpc)
        ]
        assert all(c.returncode == 0 and c.stdout.strip() for c in chats), chats
        models = [run("models", "list", "--server", url, data=tmp_path / "x").stdout for url in (rest, grpc)]
        assert models[0] == models[1] and "smollm2-135m-instruct" in models[0] and "llama.cpp" in models[0]
        listed = run("conversations", "list", "--server", grpc, data=tmp_path / "x")
        assert listed.returncode == 0 and listed.stdout.count("Say hello") == 2, listed
        gone = run("documents", "delete", shown[0][0]["id"], "--server", grpc, data=tmp_path / "x")
        assert gone.returncode == 0 and "deleted" in gone.stdout
        missing = run("documents", "show", shown[0][0]["id"], "--server", rest, data=tmp_path / "x")
        assert missing.returncode == 1 and "mindfu: " in missing.stderr
    refused = run("documents", "list", "--server", "ftp://somewhere", data=tmp_path / "x")
    assert refused.returncode == 1 and "http://HOST:PORT or grpc://HOST:PORT" in refused.stderr


def test_bad_arguments(tmp_path: Path) -> None:
    assert run("ingest", str(tmp_path / "nope"), data=tmp_path).returncode == 2
    bad = run("ingest", str(tmp_path), "--metadata", "[1]", data=tmp_path)
    assert bad.returncode == 2 and "JSON object" in bad.stderr
