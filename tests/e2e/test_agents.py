"""The coding agents themselves, run non-interactively against ``mindfu serve`` on SmolLM2: Mistral Vibe
(PyPI ``mistral-vibe``, OpenAI chat completions) and Claude Code (npm ``@anthropic-ai/claude-code``,
the Anthropic Messages API). Each must get an answer back, and its request — with its tool definitions —
must reach MindFu well-formed: the logged conversation holds the agent's prompt and every tool it offered,
each with a JSON schema."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import agents
from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.slow
KEY = "sk-agents"
MODEL = "smollm2-135m-instruct"
PROMPT = "Say hello in one short sentence."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # the agents' system prompts and tool lists take 4-6k tokens: SmolLM2's full 8k window is needed
    env = {"MINDFU_API_KEYS": KEY, "MINDFU_LLM__CONTEXT_LENGTH": "8192", "MINDFU_RAG__ENABLED": "false"}
    with running_server(tmp_path_factory.mktemp("agents"), env=env) as running:
        yield running


def logged(server: Server, marker: str, timeout: float = 15, key: str = KEY) -> dict[str, Any]:
    """The logged conversation whose first user message contains ``marker`` (logging is asynchronous)."""
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + timeout
    while True:
        for item in httpx.get(f"{server.base_url}/conversations", headers=headers).json()["data"]:
            if marker in item["title"]:
                found: dict[str, Any] = httpx.get(
                    f"{server.base_url}/conversations/{item['id']}", headers=headers
                ).json()
                return found
        assert time.monotonic() < deadline, f"no logged conversation mentions {marker!r}"
        time.sleep(0.2)


def assert_tools_well_formed(conversation: dict[str, Any], expected: str) -> list[str]:
    tools = conversation["tools"]
    names = [tool["function"]["name"] for tool in tools]
    assert expected in names, names
    for tool in tools:
        assert tool["type"] == "function"
        parameters = tool["function"]["parameters"]
        assert parameters.get("type") == "object" and isinstance(parameters.get("properties", {}), dict)
    return names


# --- Mistral Vibe -----------------------------------------------------------------------------------------

VIBE_CONFIG = """\
active_model = "mindfu"
enable_update_checks = false
enable_auto_update = false
enable_telemetry = false
enable_mcp = false
enable_connectors = false
enable_subagents = false
enable_background_processes = false
include_project_context = false
include_commit_signature = false
disabled_skills = ["re:.*"]
enabled_tools = ["bash"]
show_greeting = false

[session_logging]
generate_titles = false

[[providers]]
name = "mindfu"
api_base = "{base_url}"
api_key_env_var = "MINDFU_KEY"
api_style = "openai"
backend = "generic"

[[models]]
name = "{model}"
provider = "mindfu"
alias = "mindfu"
temperature = 0.2
# vibe refuses a window under 13334 tokens; the server enforces its real one
max_context_length = 16384
"""
VIBE_AGENT = """\
display_name = "Tiny"
description = "A short prompt for a small local model"
safety = "yolo"
system_prompt_id = "tiny"
enabled_tools = ["bash"]
bypass_tool_permissions = true
"""


def test_mistral_vibe_gets_an_answer(server: Server, tmp_path: Path) -> None:
    executable = agents.vibe()
    home = tmp_path / "vibe"
    (home / "agents").mkdir(parents=True)
    (home / "prompts").mkdir()
    (home / "config.toml").write_text(VIBE_CONFIG.format(base_url=server.base_url, model=MODEL))
    (home / "agents" / "tiny.toml").write_text(VIBE_AGENT)
    (home / "prompts" / "tiny.md").write_text("You are a coding assistant with a bash tool. Answer briefly.")
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MISTRAL_", "VIBE_"))},
        "HOME": str(tmp_path),
        "VIBE_HOME": str(home),
        "MINDFU_KEY": KEY,
        "VIBE_TEST_DISABLE_KEYRING": "1",
    }
    marker = "vibe-check-7"
    result = subprocess.run(
        [
            str(executable),
            "-p",
            f"{PROMPT} ({marker})",
            "--agent",
            "tiny",
            "--output",
            "text",
            "--max-turns",
            "2",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 3), result.stderr  # 3: the turn limit, after the model used a tool
    conversation = logged(server, marker)
    names = assert_tools_well_formed(conversation, "bash")
    assert len(names) >= 5  # vibe always offers its file and shell tools
    messages = conversation["messages"]
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    assert messages[-1]["role"] in ("assistant", "tool")
    if result.returncode == 0:
        assert result.stdout.strip(), result.stderr  # the model's answer, printed by vibe
    calls = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    for call in calls:  # when the small model did call a tool, the call went back to vibe well-formed
        assert call["function"]["name"] in names
        assert isinstance(json.loads(call["function"]["arguments"]), dict)


# --- Claude Code ------------------------------------------------------------------------------------------


def claude_env(server: Server, home: Path) -> dict[str, str]:
    """Claude Code pointed at MindFu, with nothing sent anywhere else and no retries to wait through."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))},
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": KEY,  # sent as x-api-key
        "ANTHROPIC_MODEL": "claude-sonnet-4-5",  # mapped to SmolLM2 by MINDFU_ANTHROPIC__MODEL_MAP
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "256",
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "8192",
        "CLAUDE_CODE_DISABLE_THINKING": "1",
        "DISABLE_PROMPT_CACHING": "1",
    }


def test_claude_code_gets_an_answer(server: Server, tmp_path: Path) -> None:
    executable = agents.claude_code()
    marker = "claude-check-7"
    work = tmp_path / "work"
    work.mkdir()
    with open(os.devnull) as nothing:
        result = subprocess.run(
            [
                str(executable),
                "-p",
                f"{PROMPT} ({marker})",
                "--bare",  # no CLAUDE.md, hooks, MCP or plugins: a prompt a 135M model's window holds
                "--system-prompt",
                "You are a terse coding assistant.",
                "--tools",
                "Bash",
                "--no-session-persistence",
                "--max-turns",
                "3",
                "--output-format",
                "json",
            ],
            cwd=work,
            env=claude_env(server, tmp_path),
            stdin=nothing,
            capture_output=True,
            text=True,
            timeout=600,
        )
    outcome = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert outcome.get("type") == "result", (result.returncode, result.stdout, result.stderr)
    if outcome.get("subtype") != "error_max_turns":  # the small model may keep calling Bash
        assert result.returncode == 0 and outcome["is_error"] is False, result.stdout
        assert isinstance(outcome["result"], str)
    conversation = logged(server, marker)
    assert_tools_well_formed(conversation, "Bash")
    messages = conversation["messages"]
    assert any(m["role"] == "user" and marker in (m["content"] or "") for m in messages)
    calls = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    for call in calls:  # when the model did call Bash, Claude Code ran it and sent the result back
        assert call["function"]["name"] == "Bash"
        assert isinstance(json.loads(call["function"]["arguments"]), dict)
