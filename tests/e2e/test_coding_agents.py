"""opencode (npm ``opencode-ai``, OpenAI chat completions) and Codex CLI (npm ``@openai/codex``, the Responses
API), run non-interactively with their default prompts and tools against ``mindfu serve`` on the embedded
SmolLM2: each gets the first bytes of every streamed answer within a second (the stream starts before the
prompt is processed) and finishes its turn; killed while MindFu is still processing its prompt, it frees
its slot at once, with nothing in the server's log.

Codex's default prompt and tools come to 9.2k tokens, past SmolLM2's 8k training window, so the server runs
it with a 16k window (llama.cpp allows it; the small model's answers past 8k are worse, never refused)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import agents
from tests.e2e.first_bytes import Proxy, timing_proxy
from tests.e2e.server import Server, running_server
from tests.e2e.test_agents import logged

pytestmark = pytest.mark.slow
KEY = "sk-coding-agents"
MODEL = "smollm2-135m-instruct"
PROMPT = "Say hello in one short sentence."
AGENTS = ["opencode", "codex"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "MINDFU_API_KEYS": KEY,
        "MINDFU_LLM__CONTEXT_LENGTH": "16384",
        "MINDFU_RAG__ENABLED": "false",
        # the agents send no temperature: greedy answers are the same on every run, and no answer runs on
        # for minutes (at 1.0 the small model now and then wrote until the window was full: 7k tokens)
        "MINDFU_LLM__TEMPERATURE": "0",
        "MINDFU_LIMITS__MAX_TOKENS": "1024",
    }
    with running_server(tmp_path_factory.mktemp("coding-agents"), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(server: Server) -> Iterator[Proxy]:
    with timing_proxy(server.url) as running:
        yield running


def opencode_command(url: str, home: Path, prompt: str) -> tuple[list[str], dict[str, str]]:
    config = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "provider": {
            "mindfu": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "MindFu",
                "options": {"baseURL": f"{url}/v1", "apiKey": KEY},
                "models": {MODEL: {"name": "SmolLM2", "limit": {"context": 16384, "output": 512}}},
            }
        },
        "model": f"mindfu/{MODEL}",
        "small_model": f"mindfu/{MODEL}",
    }
    path = home / "opencode.json"
    path.write_text(json.dumps(config))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "OPENCODE_CONFIG": str(path),
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",  # no models.dev catalogue: the provider is all in the config
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    }
    return [str(agents.opencode()), "run", "--format", "json", prompt], env


def codex_command(url: str, home: Path, prompt: str) -> tuple[list[str], dict[str, str]]:
    codex_home = home / ".codex"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{MODEL}"\n'
        'model_provider = "mindfu"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "read-only"\n'
        "[model_providers.mindfu]\n"
        'name = "MindFu"\n'
        f'base_url = "{url}/v1"\n'
        'env_key = "MINDFU_KEY"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CODEX_HOME": str(codex_home), "MINDFU_KEY": KEY}
    return [str(agents.codex()), "exec", "--skip-git-repo-check", "--json", prompt], env


def command(agent: str, url: str, home: Path, prompt: str) -> tuple[list[str], dict[str, str]]:
    return (opencode_command if agent == "opencode" else codex_command)(url, home, prompt)


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def finished(agent: str, result: subprocess.CompletedProcess[str]) -> str:
    """The answer the agent printed at the end of its turn."""
    seen = events(result.stdout)
    assert result.returncode == 0, (result.stdout, result.stderr)
    if agent == "opencode":
        assert any(e["type"] == "step_finish" for e in seen), result.stdout
        texts = [e["part"]["text"] for e in seen if e["type"] == "text"]
    else:
        assert any(e["type"] == "turn.completed" for e in seen), result.stdout
        texts = [e["item"]["text"] for e in seen if e["type"] == "item.completed" and "text" in e["item"]]
    assert any(text.strip() for text in texts) or any("tool" in e["type"] for e in seen), result.stdout
    return texts[-1] if texts else ""


@pytest.mark.parametrize("agent", AGENTS)
def test_the_agent_sees_first_bytes_at_once_and_finishes(
    agent: str, server: Server, proxy: Proxy, tmp_path: Path
) -> None:
    marker = f"{agent}-hello-3"
    args, env = command(agent, proxy.url, tmp_path, f"{PROMPT} ({marker})")
    before = len(proxy.exchanges)
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        args, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240
    )
    finished(agent, result)
    streamed = [e for e in proxy.exchanges[before:] if e.method == "POST" and e.streamed]
    assert streamed, proxy.exchanges[before:]
    for exchange in streamed:  # headers and the first event come before the prompt is processed
        assert exchange.status == 200, exchange
        assert exchange.first_bytes_s < 1.0, exchange
    if agent == "opencode":  # Codex sends store: false, so only opencode's turn is logged
        tools = [tool["function"]["name"] for tool in logged(server, marker, key=KEY)["tools"]]
        assert len(tools) >= 5, tools  # the agent's default tools reached the model


def wait_busy(server: Server, timeout: float, hold: float = 1.0) -> None:
    """Returns once a request has kept an engine slot busy for ``hold`` seconds on end.

    An agent may first send a short request (opencode asks for a session title) that comes and goes
    within a poll or two: seeing a slot busy once does not mean the long turn is being processed.
    """
    deadline = time.monotonic() + timeout
    since: float | None = None
    while True:
        now = time.monotonic()
        if server.engine()["active"]:
            since = now if since is None else since
            if now - since >= hold:
                return
        else:
            since = None
        assert now < deadline, "no request of the agent's kept the engine busy"
        time.sleep(0.05)


@pytest.mark.parametrize("agent", AGENTS)
def test_an_agent_killed_during_prefill_frees_its_slot_at_once(
    agent: str, server: Server, tmp_path: Path
) -> None:
    deadline = time.monotonic() + 30  # an agent of an earlier test may still be leaving
    while server.engine()["active"]:
        assert time.monotonic() < deadline, server.engine()
        time.sleep(0.1)
    offset = server.log.stat().st_size
    args, env = command(agent, server.url, tmp_path, f"{PROMPT} ({agent}-killed-5)")
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen(
        args,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the agent and whatever it spawned, killed together
    )
    try:
        wait_busy(server, timeout=120)  # well inside the turn: its prompt takes seconds on two cores
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed = time.monotonic()
    while server.engine()["active"]:
        assert time.monotonic() - killed < 5, f"the slot is still busy: {server.engine()}"
        time.sleep(0.05)
    time.sleep(0.5)
    assert server.engine()["active"] == 0
    with server.log.open() as log:
        log.seek(offset)
        written = log.read()
    for sign in ("Traceback", "ERROR", "Exception", " 500"):
        assert sign not in written, written
