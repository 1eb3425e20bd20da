"""``mindfu keys``: on the data directory's database (the operator's files), and through a server; a key made
either way is taken by a server sharing the database, and stops working once revoked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from dependency_injector import providers

from mindfu_adapters.container import build_container
from mindfu_adapters.settings import Settings
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_cli.main import main
from mindfu_http.app import create_app
from tests.e2e.server import free_port
from tests.fakes import HashEmbedder, ScriptedEngine


def keys(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["keys", *args])
    out, err = capsys.readouterr()
    return code, out, err


@contextmanager
def serving(data: Path, **settings: object) -> Iterator[str]:
    """A server over ``data``, in a thread of this process; stored keys are looked up on every call."""
    container = build_container(
        Settings(data_dir=data, conversations={"enabled": False}, auth={"cache_s": 0}, **settings)  # type: ignore[arg-type]
    )
    container.llm_engine.override(providers.Object(ScriptedEngine()))
    container.embedder.override(providers.Object(HashEmbedder()))
    container.vector_store.override(providers.Object(InMemoryVectorStore()))
    port = free_port()
    served = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not served.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        thread.join(timeout=30)


def me(url: str, key: str | None) -> httpx.Response:
    return httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {key}"} if key else {})


def test_keys_made_on_the_servers_files_work_on_the_server_until_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINDFU_DATA_DIR", str(tmp_path))
    code, out, _ = keys(capsys, "create", "--tenant", "acme", "--scope", "chat", "--scope", "documents:read")
    assert code == 0, out
    secret = out.splitlines()[-1]  # the key alone on the last line
    assert secret.startswith("mf_") and " " not in secret
    assert (tmp_path / "server.secret").stat().st_mode & 0o777 == 0o600
    listed = json.loads(keys(capsys, "list", "--json")[1])
    assert [(k["tenant"], k["scopes"], k["revoked_at"]) for k in listed] == [
        ("acme", ["chat", "documents:read"], None)
    ]
    assert secret not in json.dumps(listed) and secret not in (tmp_path / "mindfu.db").read_bytes().decode(
        "latin-1"
    )
    with serving(tmp_path) as url:
        assert me(url, secret).json()["tenant"] == "acme"
        assert me(url, None).status_code == 401  # a stored key closes the server
        code, out, _ = keys(capsys, "revoke", listed[0]["id"])
        assert code == 0 and out.startswith(f"revoked {listed[0]['id']}")
        answer = me(url, secret)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "revoked_api_key"
    code, _, err = keys(capsys, "create", "--tenant", "acme", "--scope", "root")
    assert code == 2 and "unknown scope 'root'" in err
    code, _, err = keys(capsys, "revoke", "key_missing")
    assert code == 2 and "No API key found" in err


def test_through_a_server_with_an_admin_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(tmp_path, api_keys="root-key") as url:
        monkeypatch.setenv("MINDFU_DATA_DIR", str(tmp_path / "unused"))  # everything goes through the server
        monkeypatch.setenv("MINDFU_API_KEY", "root-key")
        code, out, _ = keys(capsys, "create", "--tenant", "globex", "--scope", "admin", "--server", url)
        assert code == 0, out
        admin = out.splitlines()[-1]
        assert me(url, admin).json()["scopes"] == ["admin"]
        # the tenant's admin makes keys of its own tenant only
        monkeypatch.setenv("MINDFU_API_KEY", admin)
        code, out, _ = keys(
            capsys, "create", "--tenant", "globex", "--scope", "chat", "--json", "--server", url
        )
        assert code == 0 and json.loads(out)["created_by"] == me(url, admin).json()["key_id"]
        code, _, err = keys(capsys, "create", "--tenant", "acme", "--scope", "chat", "--server", url)
        assert code == 2 and "another tenant" in err
        code, out, _ = keys(capsys, "list", "--server", url)
        assert code == 0 and out.count("globex") == 2
        monkeypatch.setenv("MINDFU_API_KEY", "wrong")
        code, _, err = keys(capsys, "list", "--server", url)
        assert code == 2 and err.startswith("mindfu: ")
