"""Gateway overhead benchmark: MindFu's server against llama-cpp-python in-process and llama_cpp.server.

Three targets run the same GGUF model on the same prompts with greedy sampling (temperature 0):

* ``direct``  - ``llama_cpp.Llama.create_chat_completion(stream=True)`` called in this process;
* ``mindfu``  - ``mindfu serve`` started as a subprocess, streamed over HTTP (SSE);
* ``llama_cpp.server`` - ``python -m llama_cpp.server`` as a subprocess, streamed with the same client code.

The machine this runs on is small and noisy, so the targets are interleaved request by request
(A, B, C, then B, C, A, ...) instead of being measured one after the other, and only one target
generates at a time. A concurrency test then sends ``--concurrency`` streams at once to MindFu and to
llama_cpp.server (again interleaved round by round) and compares aggregate throughput.

Per streamed request the client records the time to the first content token (TTFT, measured from
just before the request is sent) and the arrival time of every content chunk. Decode speed is
``(content chunks - 1) / (last chunk time - first chunk time)``: the tokens produced after the first
one over the time it took to produce them. llama-cpp-python streams one token per chunk (it merges
only while a stop string or an incomplete UTF-8 sequence is pending), and the chunk count is the one
measure all three targets share, so it is used for every target; MindFu's ``usage.completion_tokens``
(``stream_options.include_usage``) is recorded next to it and any disagreement is reported.

Usage::

    python bench/gateway.py [--rounds N] [--max-tokens M] [--concurrency C] [--mindfu-slots S] [--json OUT]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from measure import CpuSnapshot, cpu_snapshot, foreign_load, machine_info, mark, median, percentile, rotation

MODEL_ID = "smollm2-135m-instruct"
DIRECT, MINDFU, LLAMA_SERVER = "direct", "mindfu", "llama_cpp.server"
SERVERS = (MINDFU, LLAMA_SERVER)

# Short prompts whose greedy answers run past 64 tokens, so that most requests end on max_tokens.
PROMPTS: tuple[str, ...] = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a CPU cache works and why it makes programs faster.",
    "Describe a walk through a busy city market in the early morning.",
    "Give me detailed advice on how to start learning to play the guitar.",
)

# Sampling the three targets share. Greedy decoding ignores top_k/top_p/min_p, but the repeat penalty
# is applied before it: llama_cpp.server defaults to 1.1, MindFu and Llama.create_chat_completion to 1.0.
SAMPLING: dict[str, Any] = {
    "temperature": 0.0,
    "top_p": 1.0,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.0,
}

TARGETS = {
    "mindfu_vs_direct_tps": 0.97,
    "mindfu_vs_server_tps": 1.0,
    "ttft_overhead_ms_p50": 5.0,
    "concurrent_mindfu_vs_server": 1.0,
}


# -- measurements -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One streamed completion as seen by the client."""

    target: str
    round: int
    prompt: int
    ttft_s: float  # arrival of the first content chunk, seconds since the request was sent
    last_s: float  # arrival of the last content chunk, same clock
    total_s: float  # the stream closed
    chunks: int  # content chunks (one token each in llama-cpp-python streaming)
    usage_tokens: int | None  # usage.completion_tokens when the target reports it
    finish_reason: str | None
    text: str = field(repr=False, default="")
    started: float = 0.0  # time.time() when the request was sent

    @property
    def tokens_per_s(self) -> float | None:
        span = self.last_s - self.ttft_s
        if self.chunks < 2 or span <= 0:
            return None
        return (self.chunks - 1) / span


@dataclass(slots=True)
class ConcurrentRun:
    """``concurrency`` streams started together against one server."""

    target: str
    round: int
    wall_s: float
    tokens: int
    usage_tokens: int | None
    errors: int
    ttft_p50_s: float

    @property
    def aggregate_tps(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


class StreamError(RuntimeError):
    """A server answered with an error status or an error event."""


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def stream_http(
    client: httpx.Client, base_url: str, prompt: str, max_tokens: int, *, target: str, rnd: int, index: int
) -> Sample:
    """Stream one chat completion over SSE; the same code serves every HTTP target."""
    body = {
        "model": MODEL_ID,
        "messages": _messages(prompt),
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **SAMPLING,
    }
    chunks = 0
    first = last = 0.0
    usage: int | None = None
    finish: str | None = None
    parts: list[str] = []
    wall = time.time()
    start = time.perf_counter()
    with client.stream("POST", f"{base_url}/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            raise StreamError(f"{target}: HTTP {response.status_code}: {response.text[:300]}")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            if "error" in event:
                raise StreamError(f"{target}: error event: {event['error']}")
            for choice in event.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    now = time.perf_counter() - start
                    if chunks == 0:
                        first = now
                    last = now
                    chunks += 1
                    parts.append(content)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            if event.get("usage"):
                usage = int(event["usage"]["completion_tokens"])
    total = time.perf_counter() - start
    return Sample(target, rnd, index, first, last, total, chunks, usage, finish, "".join(parts), wall)


def stream_direct(llm: Any, prompt: str, max_tokens: int, *, rnd: int, index: int) -> Sample:
    """Stream one chat completion from llama-cpp-python in this process."""
    chunks = 0
    first = last = 0.0
    finish: str | None = None
    parts: list[str] = []
    wall = time.time()
    start = time.perf_counter()
    stream = llm.create_chat_completion(
        messages=_messages(prompt), max_tokens=max_tokens, stream=True, **SAMPLING
    )
    for event in stream:
        choice = event["choices"][0]
        content = choice["delta"].get("content")
        if content:
            now = time.perf_counter() - start
            if chunks == 0:
                first = now
            last = now
            chunks += 1
            parts.append(content)
        if choice.get("finish_reason"):
            finish = choice["finish_reason"]
    total = time.perf_counter() - start
    return Sample(DIRECT, rnd, index, first, last, total, chunks, None, finish, "".join(parts), wall)


def run_concurrent(
    pool: ThreadPoolExecutor,
    client: httpx.Client,
    base_url: str,
    concurrency: int,
    max_tokens: int,
    *,
    target: str,
    rnd: int,
) -> ConcurrentRun:
    """``concurrency`` streams released together, one per thread; wall time is release to last close."""
    gate = threading.Barrier(concurrency + 1)

    def one(i: int) -> Sample:
        gate.wait(timeout=60)
        prompt = PROMPTS[i % len(PROMPTS)]
        return stream_http(client, base_url, prompt, max_tokens, target=target, rnd=rnd, index=i)

    futures = [pool.submit(one, i) for i in range(concurrency)]
    try:
        gate.wait(timeout=60)
    except BaseException:  # interrupted: release the workers waiting at the gate
        gate.abort()
        raise
    start = time.perf_counter()
    samples: list[Sample] = []
    errors = 0
    for future in futures:
        try:
            samples.append(future.result())
        except (StreamError, httpx.HTTPError, threading.BrokenBarrierError) as exc:
            errors += 1
            print(f"  ! {exc}", file=sys.stderr)
    wall = time.perf_counter() - start
    usages = [s.usage_tokens for s in samples]
    return ConcurrentRun(
        target=target,
        round=rnd,
        wall_s=wall,
        tokens=sum(s.chunks for s in samples),
        usage_tokens=sum(u for u in usages if u is not None) if usages and None not in usages else None,
        errors=errors,
        ttft_p50_s=statistics.median(s.ttft_s for s in samples) if samples else float("nan"),
    )


# -- subprocess servers -------------------------------------------------------------------------------

_CHILDREN: list[subprocess.Popen[bytes]] = []


def _kill(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate ``proc`` and its process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _kill_all() -> None:
    while _CHILDREN:
        _kill(_CHILDREN.pop())


atexit.register(_kill_all)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class Server:
    name: str
    base_url: str
    proc: subprocess.Popen[bytes]
    log: Path


def start_server(
    name: str,
    cmd: Sequence[str],
    *,
    env: dict[str, str],
    ready_path: str,
    port: int,
    workdir: Path,
    timeout: float = 180.0,
) -> Server:
    """Start ``cmd`` in its own process group and wait until ``GET ready_path`` answers 200."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _CHILDREN.append(proc)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + ready_path, timeout=2.0).status_code == 200:
                return Server(name, base_url, proc, log)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready after {timeout:.0f}s:\n{_tail(log)}")
        time.sleep(0.25)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_mindfu(
    model: Path,
    *,
    slots: int,
    threads: int,
    workdir: Path,
    context: int = 4096,
    model_id: str = MODEL_ID,
    settings: dict[str, str] | None = None,
) -> Server:
    """``mindfu serve`` on ``model`` with only these settings (``settings``: more MINDFU_* variables)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDFU_")}
    env.update(
        MINDFU_DATA_DIR=str(workdir / "mindfu-data"),
        MINDFU_CONFIG_FILE=str(
            workdir / "no-mindfu.toml"
        ),  # ignore any mindfu.toml in the caller's directory
        MINDFU_LLM__MODEL_PATH=str(model),
        MINDFU_LLM__MODEL_ID=model_id,
        MINDFU_LLM__CONTEXT_LENGTH=str(context),
        MINDFU_LLM__THREADS=str(threads),
        MINDFU_LLM__SLOTS=str(slots),
        MINDFU_LOG_LEVEL="WARNING",
        **(settings or {}),
    )
    exe = Path(sys.executable).with_name("mindfu")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mindfu_cli"]
    return start_server(
        MINDFU,
        [*cmd, "serve", "--port", str(port), "--grpc-port", "0"],
        env=env,
        ready_path="/health/ready",
        port=port,
        workdir=workdir,
    )


def start_llama_server(model: Path, *, threads: int, workdir: Path) -> Server:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ID,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        # By default a waiting request cuts the running stream short ("[DONE]" mid-answer); the
        # concurrency test needs every stream to run to the end.
        "--interrupt_requests",
        "false",
    ]
    return start_server(
        LLAMA_SERVER,
        cmd,
        env=dict(os.environ),
        ready_path="/v1/models",
        port=port,
        workdir=workdir,
    )


# -- reporting ----------------------------------------------------------------------------------------


def run_pair(
    servers: dict[str, Server], order: tuple[str, str], args: argparse.Namespace
) -> tuple[list[Sample], dict[str, float] | None]:
    """Every prompt on both servers of ``order``, one request at a time, the order alternating per request;
    ``args.warmup`` unmeasured rounds first. Returns the samples and the foreign CPU load of the run."""
    samples: list[Sample] = []
    before = cpu_snapshot(c.pid for c in _CHILDREN)
    with httpx.Client(timeout=httpx.Timeout(300.0)) as client:
        for rnd in range(-args.warmup, args.rounds):
            for index in range(len(PROMPTS)):
                for target in rotation(order, rnd * len(PROMPTS) + index):
                    sample = stream_http(
                        client, servers[target].base_url, PROMPTS[index], args.max_tokens,
                        target=target, rnd=rnd, index=index,
                    )  # fmt: skip
                    if rnd >= 0:
                        samples.append(sample)
            print(f"round {rnd + 1}/{args.rounds} done" if rnd >= 0 else "warm-up done", flush=True)
    return samples, foreign_load(before, cpu_snapshot(c.pid for c in _CHILDREN))


def target_stats(mine: Sequence[Sample]) -> dict[str, Any]:
    """One target's request count, tokens/s (median, p10, p90) and TTFT in ms (p50, p90)."""
    rates = [r for s in mine if (r := s.tokens_per_s) is not None]
    ttfts = [s.ttft_s * 1000 for s in mine]
    return {
        "requests": len(mine),
        "tokens_per_s_median": median(rates),
        "tokens_per_s_p10": percentile(rates, 0.10),
        "tokens_per_s_p90": percentile(rates, 0.90),
        "ttft_ms_p50": median(ttfts),
        "ttft_ms_p90": percentile(ttfts, 0.90),
    }


def summarise_pair(samples: Sequence[Sample], base: str, other: str) -> dict[str, Any]:
    """Per target: request rates and TTFTs; between them (``other`` against ``base``): the tokens/s ratio
    and the added TTFT, overall and paired (the same round and prompt on both)."""
    per = {target: target_stats([s for s in samples if s.target == target]) for target in (base, other)}
    index = {(s.round, s.prompt): s for s in samples if s.target == base}
    pairs = [
        (s, index[(s.round, s.prompt)]) for s in samples if s.target == other and (s.round, s.prompt) in index
    ]
    rate_ratios = [a.tokens_per_s / b.tokens_per_s for a, b in pairs if a.tokens_per_s and b.tokens_per_s]
    return {
        "per_target": per,
        "tps": per[other]["tokens_per_s_median"] / per[base]["tokens_per_s_median"],
        "paired_tps": median(rate_ratios),
        "added_ttft_ms_p50": per[other]["ttft_ms_p50"] - per[base]["ttft_ms_p50"],
        "paired_added_ttft_ms_p50": median([(a.ttft_s - b.ttft_s) * 1000 for a, b in pairs]),
    }


def pair_notes(
    samples: Sequence[Sample], order: tuple[str, str], load: dict[str, float] | None, what: str
) -> list[str]:
    """Differing greedy answers between the two ``what`` (targets, deployments...), and a busy machine."""
    base, other = order
    texts = {t: {s.prompt: s.text for s in samples if s.target == t} for t in order}
    notes: list[str] = []
    differing = [i for i in texts[base] if texts[base][i] != texts[other].get(i)]
    if differing:
        notes.append(f"greedy answers differ between the {what} for prompts {differing}")
    if load is not None and load["foreign_cores"] > 0.25:
        notes.append(f"other processes used {load['foreign_cores']:.2f} cores during the run: expect noise")
    return notes


def print_pair(per: dict[str, Any], order: tuple[str, str]) -> None:
    print(f"\n{'':10} {'tok/s p50':>10} {'p10':>8} {'p90':>8} {'TTFT p50 ms':>12} {'p90':>8}")
    for target in order:
        row = per[target]
        print(
            f"{target:10} {row['tokens_per_s_median']:10.1f} {row['tokens_per_s_p10']:8.1f} "
            f"{row['tokens_per_s_p90']:8.1f} {row['ttft_ms_p50']:12.2f} {row['ttft_ms_p90']:8.2f}"
        )


def summarise(samples: Sequence[Sample], runs: Sequence[ConcurrentRun]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for target in (DIRECT, *SERVERS):
        mine = [s for s in samples if s.target == target]
        per[target] = {
            **target_stats(mine),
            "content_chunks_mean": statistics.fmean(s.chunks for s in mine) if mine else float("nan"),
        }

    # Paired comparisons: the same (round, prompt) on two targets, minutes apart at most.
    def paired(a: str, b: str, fn: Callable[[Sample, Sample], float | None]) -> float:
        index = {(s.round, s.prompt): s for s in samples if s.target == b}
        values = [
            v
            for s in samples
            if s.target == a and (o := index.get((s.round, s.prompt))) and (v := fn(s, o)) is not None
        ]
        return median(values)

    def rate_ratio(x: Sample, y: Sample) -> float | None:
        rx, ry = x.tokens_per_s, y.tokens_per_s
        return rx / ry if rx and ry else None

    d, m, s_ = per[DIRECT], per[MINDFU], per[LLAMA_SERVER]
    ratios = {
        "mindfu_vs_direct_tps": m["tokens_per_s_median"] / d["tokens_per_s_median"],
        "mindfu_vs_server_tps": m["tokens_per_s_median"] / s_["tokens_per_s_median"],
        "ttft_overhead_ms_p50": m["ttft_ms_p50"] - d["ttft_ms_p50"],
        "server_vs_direct_tps": s_["tokens_per_s_median"] / d["tokens_per_s_median"],
        "server_ttft_overhead_ms_p50": s_["ttft_ms_p50"] - d["ttft_ms_p50"],
        "paired_mindfu_vs_direct_tps": paired(MINDFU, DIRECT, rate_ratio),
        "paired_mindfu_vs_server_tps": paired(MINDFU, LLAMA_SERVER, rate_ratio),
        "paired_ttft_overhead_ms": paired(MINDFU, DIRECT, lambda x, y: (x.ttft_s - y.ttft_s) * 1000),
    }
    conc: dict[str, Any] = {}
    for target in SERVERS:
        mine_runs = [r for r in runs if r.target == target]
        conc[target] = {
            "runs": len(mine_runs),
            "aggregate_tps_median": median([r.aggregate_tps for r in mine_runs]),
            "wall_s_median": median([r.wall_s for r in mine_runs]),
            "ttft_ms_p50": median([r.ttft_p50_s * 1000 for r in mine_runs]),
            "errors": sum(r.errors for r in mine_runs),
        }
    if runs:
        ratios["concurrent_mindfu_vs_server"] = (
            conc[MINDFU]["aggregate_tps_median"] / conc[LLAMA_SERVER]["aggregate_tps_median"]
        )
    return {"per_target": per, "ratios": ratios, "concurrency": conc}


def consistency_notes(samples: Sequence[Sample], runs: Sequence[ConcurrentRun]) -> list[str]:
    """Things worth a look: differing answers across targets, usage that disagrees with what was streamed."""
    notes: list[str] = []
    texts: dict[tuple[str, int], set[str]] = {}
    for s in samples:
        texts.setdefault((s.target, s.prompt), set()).add(s.text)
    for p in range(len(PROMPTS)):
        for target in SERVERS:
            if texts.get((target, p)) != texts.get((DIRECT, p)):
                notes.append(f"prompt {p}: {target} answered differently from direct (greedy decoding)")
    off = [s for s in samples if s.usage_tokens is not None and s.usage_tokens != s.chunks]
    if off:
        deltas = sorted({s.usage_tokens - s.chunks for s in off if s.usage_tokens is not None})
        which = sorted({s.target for s in off})
        notes.append(
            f"usage.completion_tokens != streamed content chunks in {len(off)} of "
            f"{sum(1 for s in samples if s.usage_tokens is not None)} requests ({', '.join(which)}; "
            f"usage - chunks = {deltas}; finish reasons {sorted({str(s.finish_reason) for s in off})})"
        )
    off_runs = [r for r in runs if r.usage_tokens is not None and r.usage_tokens != r.tokens]
    if off_runs:
        notes.append(
            f"concurrent runs: usage total != chunk total in {len(off_runs)} runs "
            f"(e.g. {off_runs[0].usage_tokens} vs {off_runs[0].tokens})"
        )
    return notes


def load_notes(samples: Sequence[Sample], load: dict[str, dict[str, float] | None]) -> list[str]:
    """Say when something else competed for the CPU, and which requests stalled."""
    notes: list[str] = []
    for phase, figures in load.items():
        if figures is None:
            continue
        label = "idle check before measuring" if phase == "idle" else f"{phase} phase"
        line = (
            f"{label}: this benchmark used {figures['own_cores']:.2f} cores, other processes "
            f"{figures['foreign_cores']:.2f}, hypervisor steal {figures['steal_cores']:.2f} "
            f"(over {figures['wall_s']:.0f} s)"
        )
        if figures["foreign_cores"] > 0.1 or figures["steal_cores"] > 0.1:
            line += " - the machine was shared: expect noise"
        notes.append(line)
    for target in (DIRECT, *SERVERS):
        mine = [s for s in samples if s.target == target]
        if not mine:
            continue
        typical = statistics.median(s.total_s for s in mine)
        slow = [s for s in mine if s.total_s > 3 * typical]
        if slow:
            worst = max(slow, key=lambda s: s.total_s)
            notes.append(
                f"{target}: {len(slow)} request(s) took over 3x the median {typical:.2f} s "
                f"(worst {worst.total_s:.1f} s, round {worst.round + 1} prompt {worst.prompt})"
            )
    return notes


def print_report(summary: dict[str, Any], notes: Sequence[str], config: dict[str, Any]) -> None:
    per, ratios, conc = summary["per_target"], summary["ratios"], summary["concurrency"]
    print()
    print(
        f"gateway benchmark  rounds={config['rounds']}  max_tokens={config['max_tokens']}  "
        f"prompts={len(PROMPTS)}  threads={config['threads']}  cores={os.cpu_count()}"
    )
    print()
    header = (
        f"{'target':<18}{'requests':>9}{'tok/s p50':>11}{'p10':>8}{'p90':>8}{'TTFT p50 ms':>13}{'p90':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, row in per.items():
        print(
            f"{name:<18}{row['requests']:>9}{row['tokens_per_s_median']:>11.1f}{row['tokens_per_s_p10']:>8.1f}"
            f"{row['tokens_per_s_p90']:>8.1f}{row['ttft_ms_p50']:>13.1f}{row['ttft_ms_p90']:>8.1f}"
        )
    print()
    if conc and any(v["runs"] for v in conc.values()):
        header = f"{'concurrent (C=' + str(config['concurrency']) + ')':<22}{'runs':>6}{'agg tok/s':>11}"
        header += f"{'wall s':>9}{'TTFT p50 ms':>13}{'errors':>8}"
        print(header)
        print("-" * len(header))
        for name, row in conc.items():
            label = f"{name} (slots={config['mindfu_slots']})" if name == MINDFU else name
            print(
                f"{label:<22}{row['runs']:>6}{row['aggregate_tps_median']:>11.1f}{row['wall_s_median']:>9.2f}"
                f"{row['ttft_ms_p50']:>13.1f}{row['errors']:>8}"
            )
        print()
    rows = [
        (
            "mindfu / direct tok/s",
            ratios["mindfu_vs_direct_tps"],
            ">= 0.97x",
            ratios["mindfu_vs_direct_tps"] >= TARGETS["mindfu_vs_direct_tps"],
            ratios["paired_mindfu_vs_direct_tps"],
        ),
        (
            "mindfu / llama_cpp.server tok/s",
            ratios["mindfu_vs_server_tps"],
            ">= 1.00x",
            ratios["mindfu_vs_server_tps"] >= TARGETS["mindfu_vs_server_tps"],
            ratios["paired_mindfu_vs_server_tps"],
        ),
        (
            "TTFT overhead mindfu - direct",
            ratios["ttft_overhead_ms_p50"],
            "<= 5 ms",
            ratios["ttft_overhead_ms_p50"] <= TARGETS["ttft_overhead_ms_p50"],
            ratios["paired_ttft_overhead_ms"],
        ),
    ]
    if "concurrent_mindfu_vs_server" in ratios:
        value = ratios["concurrent_mindfu_vs_server"]
        rows.append(
            (
                "concurrent mindfu / server agg",
                value,
                ">= 1.00x",
                value >= TARGETS["concurrent_mindfu_vs_server"],
                None,
            )
        )
    header = f"{'comparison':<34}{'value':>10}{'paired':>10}  {'target':<10}{'':>5}"
    print(header)
    print("-" * len(header))
    for label, value, target, ok, paired in rows:
        fmt = "{:.1f} ms" if "TTFT" in label else "{:.4f}x"
        paired_text = fmt.format(paired) if paired is not None else "-"
        print(f"{label:<34}{fmt.format(value):>10}{paired_text:>10}  {target:<10}{mark(ok):>5}")
    print(
        f"(llama_cpp.server vs direct: {ratios['server_vs_direct_tps']:.3f}x tok/s, "
        f"TTFT +{ratios['server_ttft_overhead_ms_p50']:.1f} ms p50; 'paired' = median over the same "
        f"round and prompt)"
    )
    if notes:
        print()
        print("notes:")
        for note in notes:
            print(f"  - {note}")


# -- main ---------------------------------------------------------------------------------------------


def _round_rate(samples: Sequence[Sample], target: str) -> float:
    return median([r for s in samples if s.target == target and (r := s.tokens_per_s) is not None])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--rounds", type=int, default=6, help="measured rounds (each: every prompt on every target)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--concurrency", type=int, default=8, help="streams at once in the concurrency test; 0 skips"
    )
    parser.add_argument("--concurrency-rounds", type=int, default=None, help="default: --rounds")
    parser.add_argument("--mindfu-slots", type=int, default=1, help="MINDFU_LLM__SLOTS for the MindFu server")
    parser.add_argument(
        "--threads", type=int, default=2, help="llama.cpp threads for every target (default 2)"
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="GGUF file (default: MindFu's default model)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write samples and summary here")
    parser.add_argument(
        "--log-dir", type=Path, default=None, help="keep the servers' logs here (default: discarded)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Every way of being stopped runs the finally blocks (and atexit), which stop the servers.
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where a shell started us ignoring it
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    signal.signal(signal.SIGHUP, lambda signum, _frame: sys.exit(128 + signum))
    if args.model is None:
        from mindfu_adapters.llm.backends import default_model_path

        args.model = default_model_path()
    model: Path = args.model.resolve()
    conc_rounds = args.rounds if args.concurrency_rounds is None else args.concurrency_rounds
    config = {
        "rounds": args.rounds,
        "warmup": args.warmup,
        "max_tokens": args.max_tokens,
        "concurrency": args.concurrency,
        "concurrency_rounds": conc_rounds,
        "mindfu_slots": args.mindfu_slots,
        "threads": args.threads,
        "model": str(model),
        "prompts": list(PROMPTS),
        "sampling": SAMPLING,
    }
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
        workdir = args.log_dir.resolve()
    else:
        workdir = Path(tempfile.mkdtemp(prefix="mindfu-bench-"))
    samples: list[Sample] = []
    runs: list[ConcurrentRun] = []
    snapshots: dict[str, CpuSnapshot | None] = {}
    pool = ThreadPoolExecutor(max_workers=max(args.concurrency, 1), thread_name_prefix="stream")
    client: httpx.Client | None = None
    started = time.monotonic()
    try:
        print(f"model {model}", flush=True)
        print("starting servers ...", flush=True)
        servers = {
            MINDFU: start_mindfu(model, slots=args.mindfu_slots, threads=args.threads, workdir=workdir),
            LLAMA_SERVER: start_llama_server(model, threads=args.threads, workdir=workdir),
        }
        from llama_cpp import Llama

        llm = Llama(model_path=str(model), n_ctx=4096, n_threads=args.threads, verbose=False)
        # Is anything else busy? llama.cpp's threads wait for each other at every step, so on a machine
        # with as many cores as threads even a little foreign load slows generation down a lot.
        snapshots["idle_start"] = cpu_snapshot(c.pid for c in _CHILDREN)
        time.sleep(2.0)
        snapshots["idle_end"] = cpu_snapshot(c.pid for c in _CHILDREN)
        idle = foreign_load(snapshots["idle_start"], snapshots["idle_end"])
        if idle is not None and idle["foreign_cores"] > 0.25:
            print(
                f"warning: other processes are using {idle['foreign_cores']:.2f} cores; expect noise",
                flush=True,
            )
        limits = httpx.Limits(max_connections=max(args.concurrency, 1) + 4, max_keepalive_connections=32)
        client = httpx.Client(timeout=httpx.Timeout(300.0), limits=limits)

        def run_one(target: str, rnd: int, index: int) -> Sample:
            prompt = PROMPTS[index]
            if target == DIRECT:
                return stream_direct(llm, prompt, args.max_tokens, rnd=rnd, index=index)
            url = servers[target].base_url
            return stream_http(client, url, prompt, args.max_tokens, target=target, rnd=rnd, index=index)

        # Sequential: every prompt on every target, the target order rotating at each step.
        step = 0
        for rnd in range(-args.warmup, args.rounds):
            if rnd == 0:
                snapshots["sequential_start"] = cpu_snapshot(c.pid for c in _CHILDREN)
            for index in range(len(PROMPTS)):
                for target in rotation([DIRECT, MINDFU, LLAMA_SERVER], step):
                    sample = run_one(target, rnd, index)
                    if rnd >= 0:
                        samples.append(sample)
                step += 1
            if rnd < 0:
                print(f"warm-up {rnd + args.warmup + 1}/{args.warmup} done", flush=True)
                continue
            latest = [s for s in samples if s.round == rnd]
            text = "  ".join(f"{t}={_round_rate(latest, t):.0f} tok/s" for t in (DIRECT, *SERVERS))
            print(f"round {rnd + 1}/{args.rounds}: {text}", flush=True)
        snapshots["sequential_end"] = cpu_snapshot(c.pid for c in _CHILDREN)

        # Concurrent: C streams at once against each server in turn (the direct engine sits idle).
        if args.concurrency > 0 and conc_rounds > 0:
            for rnd in range(-1, conc_rounds):  # round -1 warms each server's concurrent path
                if rnd == 0:
                    snapshots["concurrent_start"] = cpu_snapshot(c.pid for c in _CHILDREN)
                for target in rotation(list(SERVERS), rnd):
                    url = servers[target].base_url
                    run = run_concurrent(
                        pool, client, url, args.concurrency, args.max_tokens, target=target, rnd=rnd
                    )
                    if rnd >= 0:
                        runs.append(run)
                if rnd >= 0:
                    text = "  ".join(
                        f"{r.target}={r.aggregate_tps:.0f} tok/s" for r in runs if r.round == rnd
                    )
                    print(f"concurrent round {rnd + 1}/{conc_rounds}: {text}", flush=True)
            snapshots["concurrent_end"] = cpu_snapshot(c.pid for c in _CHILDREN)
    finally:
        _kill_all()  # first: any stream still open ends with a connection error
        pool.shutdown(wait=True, cancel_futures=True)
        if client is not None:
            client.close()
    elapsed = time.monotonic() - started
    summary = summarise(samples, runs)
    summary["machine_load"] = {
        phase: foreign_load(snapshots.get(f"{phase}_start"), snapshots.get(f"{phase}_end"))
        for phase in ("idle", "sequential", "concurrent")
    }
    notes = consistency_notes(samples, runs) + load_notes(samples, summary["machine_load"])
    print_report(summary, notes, config)
    print(f"\n(total {elapsed:.0f} s)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": machine_info(["llama-cpp-python"]),
            "config": config,
            "elapsed_s": elapsed,
            "summary": summary,
            "targets": TARGETS,
            "notes": notes,
            "samples": [{**asdict(s), "tokens_per_s": s.tokens_per_s} for s in samples],
            "concurrent_runs": [{**asdict(r), "aggregate_tps": r.aggregate_tps} for r in runs],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.log_dir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
