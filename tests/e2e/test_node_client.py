"""Another language, for real: a Node.js client (@grpc/grpc-js, @grpc/proto-loader) loads proto/, checks
health, lists models and streams a chat from ``mindfu serve``'s gRPC port, with an API key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.server import running_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("node")


def _node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("MINDFU_REQUIRE_NODE"):
            pytest.fail("node and npm are required here (MINDFU_REQUIRE_NODE is set)")
        pytest.skip("node and npm are not installed: the Node.js client test needs them")
    return node, npm


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js with the client's packages installed from its lockfile (the test's own set-up)."""
    node, npm = _node_tools()
    installed = CLIENT / "node_modules" / ".package-lock.json"
    lock = CLIENT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CLIENT, check=True, timeout=300
        )
    return node


def test_a_node_client_checks_health_lists_models_and_streams_a_chat(node: str, tmp_path: Path) -> None:
    with running_server(tmp_path, env={"MINDFU_API_KEYS": "node-key"}) as server:
        result = subprocess.run(
            [node, "client.mjs", server.grpc_target, str(ROOT / "proto"), "node-key"],
            cwd=CLIENT,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["health"] == "SERVING" and seen["chatHealth"] == "SERVING"
    assert seen["models"] == ["smollm2-135m-instruct"]
    assert seen["unknownModel"]["code"] == "NOT_FOUND"
    assert seen["withoutKey"]["code"] == "UNAUTHENTICATED"
    assert "Paris" in seen["text"]
    assert seen["pieces"] > 2 and len(seen["ids"]) == 1 and seen["ids"][0].startswith("chatcmpl-")
    assert seen["finishReasons"] in (["FINISH_REASON_STOP"], ["FINISH_REASON_LENGTH"])
    usage = seen["usage"]
    assert 0 < usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_the_openai_node_sdk_chats_and_streams(node: str, tmp_path: Path) -> None:
    """The official ``openai`` npm package against the OpenAI-compatible API (chat, stream, an error)."""
    with running_server(tmp_path, env={"MINDFU_API_KEYS": "node-key"}) as server:
        result = subprocess.run(
            [node, "openai.mjs", server.base_url, "node-key", "smollm2-135m-instruct"],
            cwd=CLIENT,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["object"] == "chat.completion" and "Paris" in seen["text"]
    assert seen["finish"] in ("stop", "length")
    assert seen["pieces"] > 2 and "Paris" in seen["streamed"]
    assert seen["streamFinish"] in ("stop", "length")
    usage, streamed = seen["usage"], seen["streamUsage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 10
    assert 0 < streamed["completion_tokens"] <= 24
    assert seen["unknownModel"] == {
        "status": 404,
        "code": "model_not_found",
        "type": "not_found_error",
        "isNotFound": True,
    }
