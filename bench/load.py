"""Load benchmark: 64 concurrent streamed chats for 60 s against ``mindfu serve`` on loopback (issue 20).

Every client loops: it sends a streamed chat, reads it to its end, and sends the next. A 429 is honoured as
a client should: the client waits the ``Retry-After`` it was given, then tries again. What is measured:

* the answers by status (the target: no 5xx, no broken stream);
* time to the first content token of the 200s (p50, p99) and the streams' total time;
* the 429s: how many, the ``Retry-After`` values, and whether they were honest: the share of retries made
  after waiting ``Retry-After`` that were served (a server that says 1 s while its line needs 30 s sends
  most clients straight into another 429);
* the server's resident memory (``VmRSS``) before the load, at its peak, and after it.

Usage::

    python bench/load.py [--clients 64] [--seconds 60] [--max-tokens 32] [--slots 4] [--queue 16] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway import MODEL_ID, Server, _kill_all, free_port, start_server
from measure import cpu_snapshot, finish, foreign_load, percentile

PROMPTS = [
    "Write a haiku about the sea.",
    "List three uses of a paper clip.",
    "Explain what a compiler does in two sentences.",
    "Name four planets and one fact about each.",
]


@dataclass(slots=True)
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    ttft_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    retry_after_s: list[float] = field(default_factory=list)
    retries: int = 0  # requests sent after waiting a Retry-After
    retries_served: int = 0
    broken_streams: int = 0  # a 200 stream that ended without [DONE]
    stream_errors: Counter[str] = field(default_factory=Counter)  # error events inside a 200 stream, by code


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def one_stream(client: httpx.AsyncClient, prompt: str, max_tokens: int, tally: Tally) -> float | None:
    """Streams one chat; the ``Retry-After`` of a 429, else ``None``."""
    body = {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    started = time.perf_counter()
    first: float | None = None
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                tally.statuses[str(response.status_code)] += 1
                if response.status_code == 429:
                    return float(response.headers.get("retry-after", "1"))
                return None
            done = False
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    tally.stream_errors[str(chunk["error"].get("code") or chunk["error"].get("type"))] += 1
                    done = True  # the stream ended as the server meant it to: with an error event
                    break
                choices = chunk.get("choices") or []
                if first is None and choices and (choices[0].get("delta") or {}).get("content"):
                    first = time.perf_counter()
            tally.statuses["200"] += 1
            if not done:
                tally.broken_streams += 1
    except httpx.HTTPError as error:
        tally.statuses[type(error).__name__] += 1
        return None
    if first is not None:
        tally.ttft_s.append(first - started)
    tally.total_s.append(time.perf_counter() - started)
    return None


async def client_loop(url: str, number: int, deadline: float, max_tokens: int, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0)) as client:
        turn, waited = number, False
        while time.monotonic() < deadline:
            retry_after = await one_stream(client, PROMPTS[turn % len(PROMPTS)], max_tokens, tally)
            if waited:
                tally.retries += 1
                tally.retries_served += retry_after is None
            waited = retry_after is not None
            if retry_after is not None:
                tally.retry_after_s.append(retry_after)
                await asyncio.sleep(min(retry_after, max(0.0, deadline - time.monotonic())))
            turn += 1


async def load(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    pid = server.proc.pid
    tally = Tally()
    peak = rss_bytes(pid)
    deadline = time.monotonic() + args.seconds
    clients = [
        asyncio.create_task(client_loop(server.base_url, n, deadline, args.max_tokens, tally))
        for n in range(args.clients)
    ]
    while not all(task.done() for task in clients):
        peak = max(peak, rss_bytes(pid))
        await asyncio.sleep(0.5)
    await asyncio.gather(*clients)
    return {"tally": tally, "peak_rss": peak}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--slots", type=int, default=4, help="MINDFU_LLM__SLOTS")
    parser.add_argument("--queue", type=int, default=16, help="MINDFU_LLM__MAX_QUEUE")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mindfu-load-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINDFU_")}
        env.update(
            MINDFU_DATA_DIR=str(workdir / "data"),
            MINDFU_CONFIG_FILE=str(workdir / "no-mindfu.toml"),
            MINDFU_LLM__THREADS=str(args.threads),
            MINDFU_LLM__SLOTS=str(args.slots),
            MINDFU_LLM__MAX_QUEUE=str(args.queue),
            MINDFU_RAG__ENABLED="false",
            MINDFU_LOG_LEVEL="WARNING",
        )
        exe = Path(sys.executable).with_name("mindfu")
        command = [str(exe), "serve", "--port", str(port), "--grpc-port", "0"]
        try:
            server = start_server(
                "mindfu", command, env=env, ready_path="/health/ready", port=port, workdir=workdir
            )
            before = rss_bytes(server.proc.pid)
            cpu_start = cpu_snapshot([server.proc.pid])
            found = asyncio.run(load(server, args))
            cpu_end = cpu_snapshot([server.proc.pid])
            time.sleep(2.0)  # streams closed: what the server holds at rest again
            after = rss_bytes(server.proc.pid)
            log_errors = sum(
                ("Traceback" in line or " 500" in line)
                for line in server.log.read_text(errors="replace").splitlines()
            )
        finally:
            _kill_all()
    tally: Tally = found["tally"]
    server_errors = sum(n for status, n in tally.statuses.items() if status.startswith("5"))
    results: dict[str, Any] = {
        "statuses": dict(tally.statuses),
        "server_errors": server_errors,
        "broken_streams": tally.broken_streams,
        "errors_in_streams": dict(tally.stream_errors),
        "log_tracebacks_or_500s": log_errors,
        "ttft_p50_s": percentile(tally.ttft_s, 0.5) if tally.ttft_s else None,
        "ttft_p99_s": percentile(tally.ttft_s, 0.99) if tally.ttft_s else None,
        "stream_p50_s": percentile(tally.total_s, 0.5) if tally.total_s else None,
        "retry_after_p50_s": percentile(tally.retry_after_s, 0.5) if tally.retry_after_s else None,
        "retry_after_max_s": max(tally.retry_after_s, default=None),
        "retries_after_waiting": tally.retries,
        "retries_served": tally.retries_served,
        "rss_before_mb": before / 2**20,
        "rss_peak_mb": found["peak_rss"] / 2**20,
        "rss_after_mb": after / 2**20,
        "load": foreign_load(cpu_start, cpu_end),
        "notes": [],
    }
    for name, value in results.items():
        if name not in ("notes",):
            print(f"{name:>24}: {value:.3f}" if isinstance(value, float) else f"{name:>24}: {value}")
    finish(results, args, time.monotonic() - started, packages=["mindfu"], targets={"server_errors": 0})
    return 0 if server_errors == 0 and tally.broken_streams == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
