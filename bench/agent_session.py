"""Coding-agent sessions: per-turn time to first token and prompt tokens recomputed, MindFu against
llama-server, the same GGUF, threads and window, interleaved turn by turn.

The session is Claude Code's (``--agent claude-code``) or Mistral Vibe's (``--agent mistral-vibe``): the
agent's captured system prompt and four of its tools (``tests/fixtures/claude_code``,
``tests/fixtures/mistral_vibe``; Vibe's trimmed to fit the model's 8k window; the tools written into the
system prompt as text so that both servers render the same prompt with the model's own template), then
recorded turns: the agent calls a tool, the
tool's result grows the history, the model answers. Each turn is sent to both servers; each server sees its
own copy of the session, turn after turn. A round is a new session (a nonce at the top of its system
prompt), so nothing carries over between rounds.

llama-server is built here from the llama.cpp sources that llama-cpp-python vendors (its sdist, the version
MindFu installs), with ``GGML_NATIVE=OFF`` like MindFu's build, once into ``.cache/``.

    .venv/bin/python bench/agent_session.py                         # one session at a time, 3 rounds
    .venv/bin/python bench/agent_session.py --concurrency 1,4,8     # also 4 and 8 sessions at once
    .venv/bin/python bench/agent_session.py --agent mistral-vibe    # Mistral Vibe's session
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

import gateway
from gateway import Server, free_port, start_server
from measure import cpu_snapshot, finish, foreign_load, mark, median, percentile

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
MINDFU, LLAMA_SERVER = "mindfu", "llama-server"
#: each agent's captured first request, and the four of its tools a session offers (shell, read, edit, write)
AGENTS = {
    "claude-code": (FIXTURES / "claude_code" / "default_request.json", ("Bash", "Read", "Edit", "Write")),
    "mistral-vibe": (
        FIXTURES / "mistral_vibe" / "default_request.json",
        ("bash", "read_file", "edit", "write_file"),
    ),
}
TARGETS = {"ttft_turns_2_n_vs_llama_server": 1.1, "ttft_turns_2_n_vs_own_turn_1": 0.25}

#: recorded tool work: (tool, arguments, result) per turn; results are files and listings of this repository
STEPS: list[tuple[str, dict[str, Any], str]] = [
    (
        "Bash",
        {"command": "ls src/mindfu_adapters/llm"},
        "\n".join(sorted(os.listdir(ROOT / "src/mindfu_adapters/llm"))),
    ),
    ("Read", {"file_path": "src/mindfu_adapters/llm/slots.py"}, "slots.py"),
    ("Read", {"file_path": "src/mindfu_adapters/llm/prompt_cache.py"}, "prompt_cache.py"),
    ("Bash", {"command": "grep -n 'def ' src/mindfu_adapters/llm/text_stream.py"}, "text_stream.py"),
    ("Read", {"file_path": "src/mindfu_adapters/llm/lora.py"}, "lora.py"),
    ("Read", {"file_path": "src/mindfu_core/services/prompt_layout.py"}, "prompt_layout.py"),
    ("Bash", {"command": "git log --oneline | head -20"}, "log"),
]


def _result(kind: str, chars: int) -> str:
    if kind.endswith(".py"):
        for folder in ("src/mindfu_adapters/llm", "src/mindfu_core/services"):
            path = ROOT / folder / kind
            if path.exists():
                return path.read_text()[:chars]
    if kind == "log":
        done = subprocess.run(["git", "log", "--oneline", "-20"], cwd=ROOT, capture_output=True, text=True)
        return done.stdout[:chars] or "(no history)"
    return kind[:chars]


def captured(agent: str) -> tuple[list[str], list[tuple[str, str, dict[str, Any]]]]:
    """The agent's system prompt (its blocks) and its session's tools (name, description, JSON schema), from
    its captured request: Anthropic Messages (Claude Code) or OpenAI chat completions (Mistral Vibe)."""
    path, names = AGENTS[agent]
    request = json.loads(path.read_text())
    if "system" in request:  # Anthropic: system blocks, tools with input_schema
        blocks = [
            b["text"] for b in request["system"] if not b["text"].startswith("x-anthropic-billing-header")
        ]
        tools = [(t["name"], t["description"], t["input_schema"]) for t in request["tools"]]
    else:  # OpenAI: a system message, function tools
        blocks = [m["content"] for m in request["messages"] if m["role"] == "system"]
        functions = [t["function"] for t in request["tools"]]
        tools = [(f["name"], f.get("description", ""), f.get("parameters", {})) for f in functions]
    return blocks, [tool for tool in tools if tool[0] in names]


def system_prompt(agent: str, nonce: str, system_chars: int, tool_chars: int) -> str:
    """The agent's system prompt (its first ``system_chars``, 0: all) with its tools written in as text."""
    blocks, tools = captured(agent)
    text = "\n\n".join(blocks)
    if system_chars:
        text = text[:system_chars]
    described = "\n\n".join(
        f"## {name}\n{description[:tool_chars]}\nParameters: {json.dumps(schema)[:600]}"
        for name, description, schema in tools
    )
    return f"Session {nonce}.\n{text}\n\n# Tools\nCall a tool as JSON.\n\n{described}"


def session_turns(nonce: str, args: argparse.Namespace) -> list[list[dict[str, Any]]]:
    """The messages of every turn: turn k is turn k-1's, then a tool call and its result."""
    history: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt(args.agent, nonce, args.system_chars, args.tool_chars)},
        {"role": "user", "content": "Look at how the llama.cpp engine picks a slot and explain it briefly."},
    ]
    turns = [list(history)]
    shell, read = AGENTS[args.agent][1][:2]
    for number, (tool, arguments, kind) in enumerate(STEPS[: args.turns - 1], 1):
        call = json.dumps({"tool": shell if tool == "Bash" else read, "arguments": arguments})
        history.append({"role": "assistant", "content": call})
        history.append(
            {"role": "user", "content": f"Tool result {number}:\n{_result(kind, args.result_chars)}"}
        )
        turns.append(list(history))
    return turns


@dataclass(slots=True)
class Turn:
    target: str
    session: int
    turn: int
    ttft_s: float
    total_s: float
    prompt_tokens: int
    recomputed: int  # prompt tokens the server computed for this turn
    completion_tokens: int


def send_turn(
    server: Server, messages: list[dict[str, Any]], max_tokens: int, session: int, turn: int
) -> Turn:
    body = {
        "model": "smollm2",
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "cache_prompt": True,  # llama-server's (its default too); MindFu ignores unknown fields
    }
    started = time.perf_counter()
    first = None
    usage: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    with (
        httpx.Client(timeout=600) as client,
        client.stream("POST", f"{server.base_url}/v1/chat/completions", json=body) as response,
    ):
        if response.status_code != 200:
            raise RuntimeError(f"{server.name} answered {response.status_code}: {response.read()[:500]!r}")
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            for choice in chunk.get("choices") or ():
                if first is None and (choice.get("delta") or {}).get("content"):
                    first = time.perf_counter()
            usage = chunk.get("usage") or usage
            timings = chunk.get("timings") or timings
    ended = time.perf_counter()
    prompt = int(usage.get("prompt_tokens") or 0)
    if server.name == LLAMA_SERVER and "prompt_n" in timings:
        recomputed = int(timings["prompt_n"])
    else:
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        recomputed = prompt - cached
    return Turn(
        target=server.name,
        session=session,
        turn=turn,
        ttft_s=(first or ended) - started,
        total_s=ended - started,
        prompt_tokens=prompt,
        recomputed=recomputed,
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


# -- llama-server, built from the sources llama-cpp-python vendors ----------------------------------------


def build_llama_server(cache: Path) -> Path:
    version = importlib.metadata.version("llama_cpp_python")
    binary = cache / f"llama-server-{version}" / "bin" / "llama-server"
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.exists():
        print(f"downloading llama-cpp-python {version}'s sources ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"llama-cpp-python=={version}", "-d", str(cache)],
            check=True,
        )  # fmt: skip
    source = cache / f"llama_cpp_python-{version}"
    if not source.exists():
        with tarfile.open(sdist) as archive:
            archive.extractall(cache, filter="data")
    build = cache / f"llama-server-{version}"
    print("building llama-server (GGML_NATIVE=OFF; several minutes on 2 cores) ...", flush=True)
    subprocess.run(
        ["cmake", "-S", str(source / "vendor" / "llama.cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
         "-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
         "-DLLAMA_BUILD_SERVER=ON", "-DBUILD_SHARED_LIBS=OFF"],
        check=True,
    )  # fmt: skip
    jobs = str(os.cpu_count() or 2)
    subprocess.run(["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs], check=True)
    return binary


def start_llama_server(
    binary: Path, model: Path, args: argparse.Namespace, parallel: int, workdir: Path
) -> Server:
    port = free_port()
    cmd = [
        str(binary), "-m", str(model), "--port", str(port), "--host", "127.0.0.1",
        "-c", str(args.context * parallel), "--parallel", str(parallel), "-t", str(args.threads),
        "-tb", str(args.threads), "-b", str(args.batch), "--cache-ram", str(args.cache_mib),
        "--no-webui", "--alias", "smollm2",
    ]  # fmt: skip
    return start_server(
        LLAMA_SERVER, cmd, env=dict(os.environ), ready_path="/health", port=port, workdir=workdir
    )


def start_mindfu(model: Path, args: argparse.Namespace, slots: int, workdir: Path) -> Server:
    settings = {
        "MINDFU_LLM__BATCH_SIZE": str(args.batch),
        "MINDFU_LLM__PROMPT_CACHE": f"{args.cache_mib}MiB",
        "MINDFU_RAG__ENABLED": "false",
    }
    return gateway.start_mindfu(
        model,
        slots=slots,
        threads=args.threads,
        workdir=workdir,
        context=args.context,
        model_id="smollm2",
        settings=settings,
    )


# -- the runs ---------------------------------------------------------------------------------------------


def sequential(servers: dict[str, Server], args: argparse.Namespace) -> list[Turn]:
    """One session at a time; each turn goes to both servers, the order alternating."""
    turns: list[Turn] = []
    for rnd in range(args.rounds):
        session = session_turns(uuid.uuid4().hex[:8], args)
        for number, messages in enumerate(session, 1):
            order = [MINDFU, LLAMA_SERVER] if (rnd + number) % 2 == 0 else [LLAMA_SERVER, MINDFU]
            for name in order:
                turn = send_turn(servers[name], messages, args.max_tokens, rnd, number)
                turns.append(turn)
                print(
                    f"round {rnd + 1} turn {number} {name:12} ttft {turn.ttft_s * 1000:8.0f} ms  "
                    f"prompt {turn.prompt_tokens:5}  recomputed {turn.recomputed:5}",
                    flush=True,
                )
    return turns


def concurrent_sessions(server: Server, sessions: int, args: argparse.Namespace) -> dict[str, Any]:
    """``sessions`` agents at once, each replaying its own session turn after turn."""
    scripts = [session_turns(uuid.uuid4().hex[:8], args) for _ in range(sessions)]

    def replay(index: int) -> list[Turn]:
        return [
            send_turn(server, messages, args.max_tokens, index, number)
            for number, messages in enumerate(scripts[index], 1)
        ]

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(sessions) as pool:
        done = [turn for turns in pool.map(replay, range(sessions)) for turn in turns]
    wall = time.perf_counter() - started
    return {
        "target": server.name,
        "sessions": sessions,
        "wall_s": wall,
        "completion_tokens_per_s": sum(t.completion_tokens for t in done) / wall,
        "ttft_p50_s": median([t.ttft_s for t in done]),
        "ttft_p90_s": percentile([t.ttft_s for t in done], 0.9),
        "recomputed_total": sum(t.recomputed for t in done),
        "prompt_total": sum(t.prompt_tokens for t in done),
    }


def summarise(turns: list[Turn]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (MINDFU, LLAMA_SERVER):
        mine = [t for t in turns if t.target == name]
        out[name] = {
            "ttft_turn_1_s": median([t.ttft_s for t in mine if t.turn == 1]),
            "ttft_turns_2_n_s": median([t.ttft_s for t in mine if t.turn > 1]),
            "recomputed_turns_2_n": median([t.recomputed for t in mine if t.turn > 1]),
            "prompt_turn_last": max((t.prompt_tokens for t in mine), default=0),
        }
    out["ratios"] = {
        "ttft_turns_2_n_vs_llama_server": out[MINDFU]["ttft_turns_2_n_s"]
        / out[LLAMA_SERVER]["ttft_turns_2_n_s"],
        "ttft_turns_2_n_vs_own_turn_1": out[MINDFU]["ttft_turns_2_n_s"] / out[MINDFU]["ttft_turn_1_s"],
    }
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="sessions replayed one at a time")
    parser.add_argument("--turns", type=int, default=8, help="turns per session (at most 8)")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--context", type=int, default=8192, help="tokens per slot")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--cache-mib", type=int, default=1024, help="host prompt cache of both servers")
    parser.add_argument("--agent", choices=sorted(AGENTS), default="claude-code", help="whose session")
    parser.add_argument(
        "--system-chars",
        type=int,
        default=None,
        help="characters kept of the agent's system prompt (default: all of Claude Code's, 9000 of Vibe's)",
    )
    parser.add_argument("--tool-chars", type=int, default=1500, help="characters kept of each tool's text")
    parser.add_argument("--result-chars", type=int, default=1400, help="characters of each tool result")
    parser.add_argument("--concurrency", default="1", help="comma-separated session counts (1: sequential)")
    parser.add_argument("--model", type=Path, help="the GGUF (default: MindFu's SmolLM2)")
    parser.add_argument("--llama-server", type=Path, help="a llama-server binary (default: built here)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.system_chars is None:  # Vibe's 18k characters and tools would not leave SmolLM2's 8k room to grow
        args.system_chars = 9000 if args.agent == "mistral-vibe" else 0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    sys.path.insert(0, str(ROOT / "src"))
    from mindfu_adapters.llm.backends import default_model_path

    model = args.model or default_model_path()
    binary = args.llama_server or build_llama_server(args.cache)
    results: dict[str, Any] = {"notes": []}
    counts = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="mindfu-agent-bench-") as tmp:
        workdir = Path(tmp)
        if 1 in counts:
            servers = {
                MINDFU: start_mindfu(model, args, 1, workdir),
                LLAMA_SERVER: start_llama_server(binary, model, args, 1, workdir),
            }
            load_start = cpu_snapshot([s.proc.pid for s in servers.values()])
            turns = sequential(servers, args)
            load = foreign_load(load_start, cpu_snapshot([s.proc.pid for s in servers.values()]))
            for server in servers.values():
                server.proc.terminate()
                server.proc.wait(30)
            summary = summarise(turns)
            results.update(turns=[asdict(t) for t in turns], sequential=summary, load_sequential=load)
            ratio = summary["ratios"]
            print()
            for name in (MINDFU, LLAMA_SERVER):
                s = summary[name]
                print(
                    f"{name:12} turn-1 TTFT {s['ttft_turn_1_s'] * 1000:7.0f} ms   turns 2..N median "
                    f"{s['ttft_turns_2_n_s'] * 1000:7.0f} ms   "
                    f"recomputed median {s['recomputed_turns_2_n']:6.0f}"
                )
            a, b = ratio["ttft_turns_2_n_vs_llama_server"], ratio["ttft_turns_2_n_vs_own_turn_1"]
            print(f"TTFT turns 2..N, MindFu / llama-server: {a:.3f}x {mark(a <= 1.1)} (target <= 1.1x)")
            print(f"TTFT turns 2..N / MindFu's turn 1:      {b:.3f}x {mark(b <= 0.25)} (target <= 0.25x)")
            if load is not None and load["foreign_cores"] > 0.1:
                results["notes"].append(f"other processes used {load['foreign_cores']:.2f} cores: rerun")
        runs = []
        for sessions in (c for c in counts if c > 1):
            for name in (MINDFU, LLAMA_SERVER) if sessions % 2 else (LLAMA_SERVER, MINDFU):
                server = (
                    start_mindfu(model, args, sessions, workdir)
                    if name == MINDFU
                    else start_llama_server(binary, model, args, sessions, workdir)
                )
                run = concurrent_sessions(server, sessions, args)
                server.proc.terminate()
                server.proc.wait(30)
                runs.append(run)
                print(
                    f"{sessions} sessions {name:12} {run['completion_tokens_per_s']:7.1f} tok/s  "
                    f"TTFT p50 {run['ttft_p50_s'] * 1000:7.0f} ms  p90 {run['ttft_p90_s'] * 1000:7.0f} ms",
                    flush=True,
                )
        results["concurrent"] = runs
        for sessions in (c for c in counts if c > 1):
            pair = {r["target"]: r for r in runs if r["sessions"] == sessions}
            ratio = pair[MINDFU]["completion_tokens_per_s"] / pair[LLAMA_SERVER]["completion_tokens_per_s"]
            results.setdefault("concurrent_ratios", {})[str(sessions)] = ratio
            verdict = mark(ratio >= 0.9)
            print(f"{sessions} sessions, aggregate tok/s MindFu / llama-server: {ratio:.3f}x {verdict}")
    finish(results, args, time.monotonic() - started, packages=("llama-cpp-python",), targets=TARGETS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
