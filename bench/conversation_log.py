"""Conversation logging benchmarks: what logging costs a chat, and how fast the log drains into PostgreSQL.

Two parts, each selectable with ``--only``:

* ``latency``    - chat latency with logging on and with it off, while every database write takes
  ``--store-delay-ms`` (200 ms): two ``mindfu`` servers (this script's ``serve`` command: the product's
  app and container, with the ConversationStore wrapped in a delay) run the same engine and model; the
  client alternates between them block by block (A B, B A, ...), non-streamed and streamed requests,
  greedy, ``--max-tokens``. Reported: p50/p90 latency of each, on/off of the p50s, the same ratio
  paired by (round, prompt), on/off of the mean over all requests, and the servers' CPU per request.
* ``throughput`` - ``DurableCompletionLog`` over ``SqlConversationStore`` on PostgreSQL, no HTTP:
  ``--records`` realistic records (3-6 request messages of ~300 characters, about a quarter of them
  follow-ups in an earlier record's conversation) submitted by ``--submitters`` concurrent tasks as fast
  as they go, into a new database each run (``--warm``: also into one already holding as many records,
  analyzed). Reported per writer batch size: submitted/s (durable in the outbox) and written/s (in
  PostgreSQL, until the queue is empty), where the writer's time goes (its steps and each kind of SQL
  statement), and the parts alone: the codec, the outbox, and ``SqlConversationStore.record`` fed
  directly.

Named ``conversation_log.py``, not ``logging.py``: ``bench/`` is ``sys.path[0]`` when a script here runs,
and a ``bench/logging.py`` would replace the standard library's ``logging`` for every benchmark (httpx
imports it at once).

Usage::

    python bench/conversation_log.py [--only latency|throughput] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from measure import (
    cpu_snapshot,
    finish,
    foreign_load,
    mark,
    measured_load,
    median,
    percentile,
    rotation,
)
from mindfu_adapters.store.codec import record_from_dict, record_to_dict
from mindfu_adapters.store.conversation_log import DurableCompletionLog, LogPolicy
from mindfu_adapters.store.conversations import SqlConversationStore
from mindfu_adapters.store.outbox import Outbox
from mindfu_adapters.store.sql import Database
from mindfu_core.domain.chat import FinishReason, Message, Role, Usage
from mindfu_core.domain.conversations import CompletionRecord

REPO = Path(__file__).resolve().parents[1]
PARTS = ("latency", "throughput")
MODEL_ID = "smollm2-135m-instruct"
ON, OFF = "logging on", "logging off"
TARGETS = {"latency_p50_on_vs_off": 1.02, "written_per_s": 2000.0}
# Prompts whose greedy answers run past the token limit, so every request generates the same length.
PROMPTS: tuple[str, ...] = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a CPU cache works and why it makes programs faster.",
    "Describe a walk through a busy city market in the early morning.",
    "Give me detailed advice on how to start learning to play the guitar.",
)


def _tests_importable() -> None:
    """``tests`` (the scripted engine, throwaway PostgreSQL databases) lives at the repository root."""
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))


# -- latency: the servers -------------------------------------------------------------------------------


class SlowStore:
    """A ConversationStore whose every write waits ``delay`` seconds first: a database under load."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def record(self, records: Sequence[CompletionRecord]) -> int:
        await asyncio.sleep(self.delay)
        written: int = await self.inner.record(records)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def serve(argv: Sequence[str]) -> int:
    """``serve``: MindFu's app over the default container, its ConversationStore slowed down."""
    parser = argparse.ArgumentParser(prog="conversation_log.py serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--logging", choices=("on", "off"), required=True)
    parser.add_argument("--store-delay-ms", type=float, default=200.0)
    parser.add_argument("--engine", choices=("real", "scripted"), default="real")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--token-delay-ms", type=float, default=10.0)
    args = parser.parse_args(argv)

    import uvicorn
    from dependency_injector import providers

    from mindfu_adapters.container import build_container
    from mindfu_adapters.settings import Settings
    from mindfu_http.app import create_app

    settings = Settings(
        data_dir=args.data_dir,
        llm={"threads": args.threads, "model_id": MODEL_ID},  # type: ignore[arg-type]
        rag={"enabled": False},  # type: ignore[arg-type]
        conversations={"enabled": args.logging == "on"},  # type: ignore[arg-type]
    )
    container = build_container(settings)
    delay = args.store_delay_ms / 1000

    def slow_store(database: Database) -> SlowStore:
        return SlowStore(SqlConversationStore(database), delay)

    container.conversation_store.override(providers.Singleton(slow_store, container.database))
    if args.engine == "scripted":
        _tests_importable()
        from tests.fakes import Reply, ScriptedEngine

        engine = ScriptedEngine(
            (Reply(text=" ".join(["token"] * 256)),),
            model_id=MODEL_ID,
            context_length=4096,
            token_delay=args.token_delay_ms / 1000,
            max_queue=16,
        )
        container.llm_engine.override(providers.Object(engine))
    config = uvicorn.Config(
        create_app(container), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


@dataclass(slots=True)
class Server:
    target: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def cpu_s(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(target: str, args: argparse.Namespace, workdir: Path) -> Server:
    port = free_port()
    name = "on" if target == ON else "off"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDFU_")}
    env["MINDFU_CONFIG_FILE"] = str(workdir / "no-mindfu.toml")  # ignore a mindfu.toml where we run
    log = workdir / f"server-{name}.log"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "serve",
        f"--port={port}",
        f"--data-dir={workdir / name}",
        f"--logging={name}",
        f"--store-delay-ms={args.store_delay_ms}",
        f"--engine={args.engine}",
        f"--threads={args.threads}",
        f"--token-delay-ms={args.token_delay_ms}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    server = Server(target, f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the {target} server exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health/ready", timeout=2).status_code == 200:
                return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the {target} server was not ready after 180 s:\n{log.read_text()}")
        time.sleep(0.2)


# -- latency: the client --------------------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    target: str
    round: int
    prompt: int
    stream: bool
    latency_s: float  # request sent to the whole answer read ([DONE] for a stream)
    ttft_s: float | None  # streams: the first content chunk
    tokens: int
    text: str = field(repr=False, default="")


def chat(
    client: httpx.Client, server: Server, prompt: int, stream: bool, args: argparse.Namespace
) -> Request:
    body = {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": PROMPTS[prompt]}],
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "stream": stream,
        **({"stream_options": {"include_usage": True}} if stream else {}),
    }
    url = f"{server.url}/v1/chat/completions"
    start = time.perf_counter()
    if not stream:
        response = client.post(url, json=body)
        latency = time.perf_counter() - start
        response.raise_for_status()
        reply = response.json()
        text = reply["choices"][0]["message"]["content"] or ""
        return Request(
            server.target, 0, prompt, False, latency, None, reply["usage"]["completion_tokens"], text
        )
    first: float | None = None
    parts: list[str] = []
    tokens = 0
    with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            for choice in event.get("choices") or ():
                if content := (choice.get("delta") or {}).get("content"):
                    first = first if first is not None else time.perf_counter() - start
                    parts.append(content)
            if event.get("usage"):
                tokens = int(event["usage"]["completion_tokens"])
    latency = time.perf_counter() - start
    return Request(server.target, 0, prompt, True, latency, first, tokens, "".join(parts))


def log_stats(server: Server) -> dict[str, Any] | None:
    body = httpx.get(f"{server.url}/health/ready", timeout=5).json()
    stats: dict[str, Any] | None = body.get("conversation_log")
    return stats


def settle(server: Server, pause: float, timeout: float = 60.0) -> None:
    """After a block: ``pause``, then wait until the server's log queue is empty, so its write-behind work
    never overlaps the other server's block. Both servers get the same pause and one health call, so the
    check costs them the same CPU."""
    time.sleep(pause)
    deadline = time.monotonic() + timeout
    while (stats := log_stats(server)) is not None and stats["queue_depth"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {server.target} server's log did not drain: {stats}")
        time.sleep(0.05)


def run_latency(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], list[str]]:
    servers: dict[str, Server] = {}
    notes: list[str] = []
    try:
        for target in (ON, OFF):
            servers[target] = start_server(target, args, workdir)
        print(
            f"latency: {args.engine} engine, max_tokens {args.max_tokens}, store delay "
            f"{args.store_delay_ms:.0f} ms, {args.rounds} rounds x {len(PROMPTS)} prompts x (plain, stream)",
            flush=True,
        )
        requests: list[Request] = []
        cpu = {target: 0.0 for target in servers}
        first = cpu_snapshot(s.proc.pid for s in servers.values())
        with httpx.Client(timeout=120) as client:
            for rnd in range(-args.warmup, args.rounds):
                for target in rotation([ON, OFF], rnd):
                    server = servers[target]
                    before = server.cpu_s()
                    block = []
                    for prompt in range(len(PROMPTS)):
                        for stream in (False, True):
                            sample = chat(client, server, prompt, stream, args)
                            sample.round = rnd
                            block.append(sample)
                    settle(server, args.store_delay_ms / 1000 + 0.25)
                    if rnd >= 0:
                        requests += block
                        cpu[target] += server.cpu_s() - before
                if rnd >= 0:
                    done = [r for r in requests if r.round == rnd]
                    line = "  ".join(
                        f"{t} {median([r.latency_s * 1000 for r in done if r.target == t]):.1f}"
                        for t in (ON, OFF)
                    )
                    print(f"  round {rnd + 1}/{args.rounds}, p50 ms: {line}", flush=True)
        stats = log_stats(servers[ON])
        load = foreign_load(first, cpu_snapshot(s.proc.pid for s in servers.values()))
    finally:
        for server in servers.values():
            server.stop()
    summary = summarise_latency(requests, cpu)
    summary["log_stats"] = stats
    summary["machine_load"] = load
    if load is not None and load["foreign_cores"] > 0.1:
        notes.append(
            f"latency: other processes used {load['foreign_cores']:.2f} cores; rerun on a quiet machine"
        )
    if stats is not None and stats["written_total"] != (args.rounds + args.warmup) * len(PROMPTS) * 2:
        notes.append(f"latency: the logging server wrote {stats['written_total']} completions, expected more")
    texts: dict[tuple[int, bool], set[str]] = {}
    for r in requests:
        texts.setdefault((r.prompt, r.stream), set()).add(r.text)
    if any(len(v) > 1 for v in texts.values()):
        notes.append("latency: the two servers' greedy answers differ; their latencies are not like for like")
    short = [r for r in requests if r.tokens != args.max_tokens]
    if short:
        notes.append(f"latency: {len(short)} answers ended before max_tokens ({args.max_tokens})")
    return {**summary, "requests": [vars_of(r) for r in requests]}, notes


def vars_of(request: Request) -> dict[str, Any]:
    return {
        "target": request.target,
        "round": request.round,
        "prompt": request.prompt,
        "stream": request.stream,
        "latency_s": request.latency_s,
        "ttft_s": request.ttft_s,
        "tokens": request.tokens,
    }


def summarise_latency(requests: Sequence[Request], cpu: dict[str, float]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    for mode, stream in (("plain", False), ("stream", True)):
        for target in (ON, OFF):
            mine = [r.latency_s * 1000 for r in requests if r.target == target and r.stream is stream]
            ttfts = [
                r.ttft_s * 1000 for r in requests if r.target == target and r.stream is stream and r.ttft_s
            ]
            per[f"{target}, {mode}"] = {
                "requests": len(mine),
                "p50_ms": median(mine),
                "p90_ms": percentile(mine, 0.90),
                "ttft_p50_ms": median(ttfts) if ttfts else None,
            }
        ratios[f"{mode}_p50_on_vs_off"] = per[f"{ON}, {mode}"]["p50_ms"] / per[f"{OFF}, {mode}"]["p50_ms"]
        off = {(r.round, r.prompt): r.latency_s for r in requests if r.target == OFF and r.stream is stream}
        ratios[f"{mode}_paired_on_vs_off"] = median(
            [
                r.latency_s / off[(r.round, r.prompt)]
                for r in requests
                if r.target == ON and r.stream is stream and (r.round, r.prompt) in off
            ]
        )
    means = {t: sum(r.latency_s for r in requests if r.target == t) for t in (ON, OFF)}
    ratios["all_mean_on_vs_off"] = means[ON] / means[OFF]  # same requests on both: sums compare as means
    counts = {t: sum(1 for r in requests if r.target == t) for t in (ON, OFF)}
    cpu_ms = {t: cpu[t] * 1000 / counts[t] if counts[t] else float("nan") for t in (ON, OFF)}
    return {"per_target": per, "ratios": ratios, "server_cpu_ms_per_request": cpu_ms}


def print_latency(summary: dict[str, Any]) -> None:
    print()
    header = f"{'target':<22} {'requests':>8} {'p50 ms':>9} {'p90 ms':>9} {'TTFT p50 ms':>12}"
    print(header)
    print("-" * len(header))
    for name, row in summary["per_target"].items():
        ttft = "-" if row["ttft_p50_ms"] is None else f"{row['ttft_p50_ms']:.1f}"
        print(f"{name:<22} {row['requests']:>8} {row['p50_ms']:>9.1f} {row['p90_ms']:>9.1f} {ttft:>12}")
    target = TARGETS["latency_p50_on_vs_off"]
    for mode in ("plain", "stream"):
        ratio = summary["ratios"][f"{mode}_p50_on_vs_off"]
        paired = summary["ratios"][f"{mode}_paired_on_vs_off"]
        print(
            f"{mode}: p50 on / off {ratio:.3f}x (paired {paired:.3f}x), target <= {target:.2f}x  "
            f"{mark(ratio <= target)}"
        )
    print(f"all requests: mean on / off {summary['ratios']['all_mean_on_vs_off']:.3f}x")
    cpu = summary["server_cpu_ms_per_request"]
    print(f"server CPU per request: on {cpu[ON]:.1f} ms, off {cpu[OFF]:.1f} ms")
    if summary.get("log_stats"):
        stats = summary["log_stats"]
        print(
            f"logging server: {stats['written_total']} written, {stats['write_failures']} failed writes, "
            f"queue {stats['queue_depth']}"
        )


# -- throughput: the records ----------------------------------------------------------------------------

_WORD_TEXT = """
the of and to in is was for that with as on by at from it an be this are which or have not has but they
their were one all been more when there can also into other only new after first some time two would about
these than may most over such where many its between used during while under through both each since
before city river company system water people history music council century family school market energy
report season station village power research project county growth island network design model process
bridge forest theory support service analysis language record science student teacher museum garden
harbour railway highway library program policy budget engine signal pattern surface climate storm winter
"""
_WORDS = _WORD_TEXT.split()


def _text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words).capitalize() + "."


def make_records(count: int, submitters: int, seed: int, tag: str = "") -> list[list[CompletionRecord]]:
    """``count`` records in ``submitters`` streams; a stream's follow-ups come after what they continue.

    A record carries 3 to 6 request messages of about 300 characters (an optional system prompt, then user
    and assistant turns ending with the user's) and one reply. About a quarter are follow-ups: their
    messages are an earlier record's whole transcript plus a new user message, in its conversation.
    """
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    streams: list[list[CompletionRecord]] = [[] for _ in range(submitters)]
    for number in range(count):
        stream = streams[number % submitters]
        previous = stream[-1] if stream else None
        if previous is not None and len(previous.messages) <= 4 and rng.random() < 0.6:
            messages = (*previous.transcript, Message(role=Role.USER, content=_text(rng, 300)))
            conversation_id = previous.conversation_id
        else:
            system = (Message(role=Role.SYSTEM, content=_text(rng, 300)),) if rng.random() < 0.5 else ()
            turns = tuple(
                Message(role=Role.USER if turn % 2 == 0 else Role.ASSISTANT, content=_text(rng, 300))
                for turn in range(rng.choice((3, 5)))
            )
            messages = system + turns
            conversation_id = f"conv_{tag}{number:08d}"
        stream.append(
            CompletionRecord(
                id=f"chatcmpl-{tag}{number:08d}",
                conversation_id=conversation_id,
                created_at=start + timedelta(milliseconds=number),
                model=MODEL_ID,
                messages=messages,
                responses=(Message(role=Role.ASSISTANT, content=_text(rng, 300)),),
                finish_reasons=(FinishReason.STOP,),
                parameters={"temperature": 0.7, "top_p": 1.0, "max_tokens": 256, "n": 1},
                usage=Usage(prompt_tokens=rng.randint(200, 600), completion_tokens=rng.randint(40, 90)),
                latency_ms=rng.uniform(300, 3000),
                ttft_ms=rng.uniform(40, 200),
                api_key_id="key_0123456789abcdef",
            )
        )
    return streams


# -- throughput: the measurements -----------------------------------------------------------------------


class Timer:
    """Total seconds and calls per name, for wrapping the writer's steps."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def wrap(self, name: str, function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)

        return timed


class TimedStore:
    """The store, its ``record`` timed."""

    def __init__(self, inner: SqlConversationStore, timer: Timer) -> None:
        self.inner = inner
        self.record = timer.wrap("store.record", inner.record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass(frozen=True, slots=True)
class Variant:
    """The writer's batch size, and whether the database starts empty or already in use (``warm``)."""

    batch_size: int
    warm: bool = False

    @property
    def label(self) -> str:
        return f"{self.batch_size}{', warm db' if self.warm else ''}"


@contextlib.asynccontextmanager
async def fresh_store(
    args: argparse.Namespace, prefill: Sequence[CompletionRecord] = (), timer: Timer | None = None
) -> AsyncIterator[SqlConversationStore]:
    """A SqlConversationStore over a new, migrated PostgreSQL database, dropped afterwards.

    ``prefill`` is written first, then the database is analyzed, as autovacuum does within a minute of
    use: a database in use, with planner statistics. ``timer`` collects the time of each kind of statement.
    """
    _tests_importable()
    if args.pg_url is not None:
        os.environ["MINDFU_TEST_POSTGRES"] = args.pg_url
    from sqlalchemy import event
    from tests.postgres import fresh_database

    async with fresh_database() as url:
        database = Database(url, pool_size=5)
        engine = database.engine.sync_engine
        try:
            await database.migrate()
            if prefill:
                store = SqlConversationStore(database)
                for first in range(0, len(prefill), 1000):
                    await store.record(prefill[first : first + 1000])
                async with database.engine.connect() as connection:
                    await connection.exec_driver_sql("ANALYZE")
                    await connection.commit()
                await database.engine.dispose()  # fresh connections: no statement planned before
            if timer is not None:
                started: dict[int, float] = {}

                @event.listens_for(engine, "before_cursor_execute")
                def before(_c: Any, cursor: Any, *_: Any) -> None:
                    started[id(cursor)] = time.perf_counter()

                @event.listens_for(engine, "after_cursor_execute")
                def after(_c: Any, cursor: Any, statement: str, *_: Any) -> None:
                    kind = "sql " + " ".join(statement.split()[:3]).lower().removesuffix(" from")
                    timer.add(kind, time.perf_counter() - started.pop(id(cursor), time.perf_counter()))

            yield SqlConversationStore(database)
        finally:
            await database.aclose()


@dataclass(slots=True)
class Run:
    variant: Variant
    round: int
    records: int
    submit_s: float  # first submit to the last one returning
    drain_s: float  # first submit to an empty queue
    steps: dict[str, float]  # seconds in the writer's steps and in each kind of SQL statement
    calls: dict[str, int]

    @property
    def submitted_per_s(self) -> float:
        return self.records / self.submit_s

    @property
    def written_per_s(self) -> float:
        return self.records / self.drain_s


async def end_to_end(
    streams: list[list[CompletionRecord]],
    variant: Variant,
    rnd: int,
    args: argparse.Namespace,
    workdir: Path,
    prefill: Sequence[CompletionRecord],
) -> Run:
    total = sum(len(s) for s in streams)
    timer = Timer()
    async with fresh_store(args, prefill if variant.warm else (), timer) as store:
        spool = Path(tempfile.mkdtemp(prefix="spool-", dir=workdir))
        policy = LogPolicy(
            batch_size=variant.batch_size, idle_wait_s=0.05, retry_initial_s=0.05, retry_max_s=0.5
        )
        log = DurableCompletionLog(spool, TimedStore(store, timer), policy)  # type: ignore[arg-type]
        await log.start()
        # The writer's queue steps, timed from outside (the outbox has no hooks).
        outbox = log._outbox
        outbox.peek = timer.wrap("outbox.peek", outbox.peek)  # type: ignore[method-assign]
        outbox.remove = timer.wrap("outbox.remove", outbox.remove)  # type: ignore[method-assign]

        async def submitter(stream: list[CompletionRecord]) -> None:
            for record in stream:
                await log.submit(record)

        start = time.perf_counter()
        await asyncio.gather(*(submitter(s) for s in streams))
        submitted = time.perf_counter() - start
        if not await log.flush(600.0):
            raise RuntimeError(f"batch {variant.label}: the queue did not drain in 10 minutes")
        drained = time.perf_counter() - start
        stats = log.stats()
        await log.aclose()
        shutil.rmtree(spool, ignore_errors=True)
    if stats.written_total != total or stats.write_failures or stats.dead_lettered:
        raise RuntimeError(f"batch {variant.label}: wrote {stats.written_total} of {total}: {stats}")
    return Run(variant, rnd, total, submitted, drained, dict(timer.seconds), dict(timer.calls))


async def codec_alone(records: Sequence[CompletionRecord]) -> dict[str, float]:
    """Microseconds per record to encode (``submit``) and decode (the writer) the queued form."""
    start = time.perf_counter()
    payloads = [
        json.dumps(record_to_dict(r), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        for r in records
    ]
    encoded = time.perf_counter()
    for payload in payloads:
        record_from_dict(json.loads(payload))
    decoded = time.perf_counter()
    return {
        "encode_us": (encoded - start) / len(records) * 1e6,
        "decode_us": (decoded - encoded) / len(records) * 1e6,
        "payload_bytes_mean": sum(len(p) for p in payloads) / len(payloads),
    }


async def outbox_alone(
    streams: list[list[CompletionRecord]], batch_size: int, workdir: Path
) -> dict[str, float]:
    """Puts/s from one task per stream, then peek + remove in batches until empty (no database)."""
    payloads = [
        [(r.id, json.dumps(record_to_dict(r), separators=(",", ":")).encode("utf-8")) for r in stream]
        for stream in streams
    ]
    total = sum(len(p) for p in payloads)
    spool = Path(tempfile.mkdtemp(prefix="outbox-", dir=workdir))
    outbox = Outbox(spool / "queue.sqlite3")
    await outbox.open()

    async def putter(items: list[tuple[str, bytes]]) -> None:
        for key, payload in items:
            await outbox.put(key, payload)

    start = time.perf_counter()
    await asyncio.gather(*(putter(p) for p in payloads))
    put = time.perf_counter() - start
    peek_s = remove_s = 0.0
    removes: list[float] = []
    while True:
        start = time.perf_counter()
        entries = await outbox.peek(batch_size)
        peek_s += time.perf_counter() - start
        if not entries:
            break
        start = time.perf_counter()
        await outbox.remove([e.seq for e in entries])
        removes.append(time.perf_counter() - start)
        remove_s += removes[-1]
    await outbox.close()
    shutil.rmtree(spool, ignore_errors=True)
    return {
        "put_per_s": total / put,
        "peek_ms_per_batch": peek_s * 1000 / len(removes),
        "remove_ms_per_batch": remove_s * 1000 / len(removes),
        "remove_ms_full_queue": removes[0] * 1000,  # the first remove, with every entry still queued
        "remove_ms_last": removes[-1] * 1000,
        "drain_per_s": total / (peek_s + remove_s),
    }


async def store_alone(
    records: Sequence[CompletionRecord],
    variant: Variant,
    args: argparse.Namespace,
    prefill: Sequence[CompletionRecord],
) -> dict[str, float]:
    """``SqlConversationStore.record`` fed directly, batch after batch, in the queue's order."""
    size = variant.batch_size
    async with fresh_store(args, prefill if variant.warm else ()) as store:
        start = time.perf_counter()
        for first in range(0, len(records), size):
            await store.record(records[first : first + size])
        seconds = time.perf_counter() - start
    return {
        "records_per_s": len(records) / seconds,
        "ms_per_batch": seconds * 1000 / -(-len(records) // size),
    }


async def profile_store(
    records: Sequence[CompletionRecord], batch_size: int, args: argparse.Namespace, top: int = 25
) -> list[dict[str, Any]]:
    """cProfile of ``store_alone`` (the event-loop thread): where ``record`` spends its time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    async with fresh_store(args) as store:
        profiler.enable()
        for first in range(0, len(records), batch_size):
            await store.record(records[first : first + batch_size])
        profiler.disable()
    stats = pstats.Stats(profiler)
    rows = [
        {
            "function": f"{Path(filename).name}:{line}({function})",
            "calls": calls,
            "tottime_s": tottime,
            "cumtime_s": cumtime,
        }
        for (filename, line, function), (_, calls, tottime, cumtime, _) in stats.stats.items()  # type: ignore[attr-defined]
    ]
    rows.sort(key=lambda row: row["tottime_s"], reverse=True)
    return rows[:top]


async def run_throughput(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], list[str]]:
    streams = make_records(args.records, args.submitters, args.seed)
    # the order of the queue when the submitters take turns: what the store is fed alone
    ordered = sorted((r for s in streams for r in s), key=lambda r: r.id)
    notes: list[str] = []
    chars = [len(m.content or "") for r in ordered for m in r.messages]
    shape = {
        "records": len(ordered),
        "conversations": len({r.conversation_id for r in ordered}),
        "follow_ups": sum(
            1 for r in ordered if r.conversation_id != "conv_" + r.id.removeprefix("chatcmpl-")
        ),
        "request_messages_mean": sum(len(r.messages) for r in ordered) / len(ordered),
        "message_chars_mean": sum(chars) / len(chars),
    }
    variants = [Variant(size) for size in args.batch_sizes]
    prefill: list[CompletionRecord] = []
    if args.warm:
        variants += [Variant(size, warm=True) for size in args.batch_sizes]
        prefill = [r for s in make_records(args.records, args.submitters, args.seed + 1, "w") for r in s]
    print(
        f"throughput: {shape['records']} records ({shape['follow_ups']} follow-ups) in "
        f"{shape['conversations']} conversations, {shape['request_messages_mean']:.1f} request messages of "
        f"{shape['message_chars_mean']:.0f} chars; {args.submitters} submitters, {args.tp_rounds} rounds",
        flush=True,
    )
    runs: list[Run] = []
    for rnd in range(args.tp_rounds):
        for step in range(len(variants)):
            variant = variants[(rnd + step) % len(variants)]
            run = await end_to_end(streams, variant, rnd, args, workdir, prefill)
            runs.append(run)
            print(
                f"  round {rnd + 1}, batch {variant.label:<20} submitted {run.submitted_per_s:6.0f}/s, "
                f"written {run.written_per_s:6.0f}/s ({run.drain_s:.1f} s)",
                flush=True,
            )
    parts: dict[str, Any] = {"codec": await codec_alone(ordered)}
    for size in args.batch_sizes:
        parts[f"outbox, batch {size}"] = await outbox_alone(streams, size, workdir)
    for variant in variants:
        parts[f"store.record, batch {variant.label}"] = await store_alone(ordered, variant, args, prefill)
    per_variant: dict[str, Any] = {}
    for variant in variants:
        mine = [r for r in runs if r.variant == variant]
        steps: dict[str, float] = {}
        for run in mine:
            for name, seconds in run.steps.items():
                steps[name] = steps.get(name, 0.0) + seconds / run.records * 1e6 / len(mine)
        per_variant[variant.label] = {
            "batch_size": variant.batch_size,
            "warm": variant.warm,
            "submitted_per_s_median": median([r.submitted_per_s for r in mine]),
            "written_per_s_median": median([r.written_per_s for r in mine]),
            "written_per_s_min": min(r.written_per_s for r in mine),
            "drain_s_median": median([r.drain_s for r in mine]),
            "writer_us_per_record": steps,
            "store_calls_median": median([r.calls.get("store.record", 0) for r in mine]),
        }
    profile = await profile_store(ordered[: args.profile_records], 500, args) if args.profile else None
    best = max(row["written_per_s_median"] for row in per_variant.values() if not row["warm"])
    if best < TARGETS["written_per_s"]:
        notes.append(
            f"throughput: best written/s {best:.0f} is under the target {TARGETS['written_per_s']:.0f}"
        )
    results = {
        "shape": shape,
        "per_variant": per_variant,
        "parts": parts,
        "profile": profile,
        "runs": [
            {
                "batch": r.variant.label,
                "round": r.round,
                "submit_s": r.submit_s,
                "drain_s": r.drain_s,
                "steps_s": r.steps,
                "calls": r.calls,
            }
            for r in runs
        ],
    }
    return results, notes


def print_throughput(results: dict[str, Any]) -> None:
    print()
    header = f"{'batch':<20} {'submitted/s':>11} {'written/s':>9} {'min':>6} {'writes':>6}"
    print(header)
    print("-" * len(header))
    for label, row in results["per_variant"].items():
        print(
            f"{label:<20} {row['submitted_per_s_median']:>11.0f} {row['written_per_s_median']:>9.0f} "
            f"{row['written_per_s_min']:>6.0f} {row['store_calls_median']:>6.0f}"
        )
    best = max(r["written_per_s_median"] for r in results["per_variant"].values() if not r["warm"])
    target = TARGETS["written_per_s"]
    print(f"best written/s {best:.0f} (empty database), target >= {target:.0f}  {mark(best >= target)}")
    print()
    print("where the writer's time goes, microseconds per record (SQL lines are inside store.record):")
    for label, row in results["per_variant"].items():
        steps = sorted(row["writer_us_per_record"].items(), key=lambda item: -item[1])
        print(f"  batch {label}: " + ", ".join(f"{name} {us:.0f}" for name, us in steps))
    print()
    print("the parts alone:")
    for name, values in results["parts"].items():
        print(f"  {name}: " + ", ".join(f"{key} {value:.1f}" for key, value in values.items()))
    if results["profile"]:
        print()
        print("cProfile of store.record alone (batch 500), by own time: own s, cumulative s, calls")
        for row in results["profile"][:15]:
            print(f"  {row['tottime_s']:7.3f} {row['cumtime_s']:7.3f} {row['calls']:>8}  {row['function']}")


# -- main -----------------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("batch sizes are positive integers")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--only", choices=PARTS, action="append", help="run this part (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--seed", type=int, default=1234)
    group = parser.add_argument_group("latency")
    group.add_argument("--rounds", type=int, default=10, help="measured rounds (default 10)")
    group.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    group.add_argument("--max-tokens", type=int, default=16, help="max_tokens of every chat (default 16)")
    group.add_argument("--store-delay-ms", type=float, default=200.0, help="per database write (default 200)")
    group.add_argument(
        "--engine", choices=("real", "scripted"), default="real", help="default real (llama.cpp)"
    )
    group.add_argument("--threads", type=int, default=2, help="llama.cpp threads (default 2)")
    group.add_argument("--token-delay-ms", type=float, default=10.0, help="scripted engine only (default 10)")
    group = parser.add_argument_group("throughput")
    group.add_argument("--records", type=int, default=20_000, help="records per run (default 20000)")
    group.add_argument("--submitters", type=int, default=64, help="concurrent submit tasks (default 64)")
    group.add_argument("--batch-sizes", type=_ints, default=[100, 500, 1000], help="default 100,500,1000")
    group.add_argument("--tp-rounds", type=int, default=2, help="measured rounds per batch size (default 2)")
    group.add_argument(
        "--pg-url", default=None, help="admin URL of the PostgreSQL (default tests/postgres.py's)"
    )
    group.add_argument(
        "--warm",
        action="store_true",
        help="also run every batch size on a database already holding --records records, analyzed",
    )
    group.add_argument("--profile", action="store_true", help="also cProfile store.record")
    group.add_argument(
        "--profile-records", type=int, default=5000, help="records in the profile (default 5000)"
    )
    args = parser.parse_args(argv)
    args.parts = args.only or list(PARTS)
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    notes: list[str] = []
    loads: dict[str, Any] = {}
    if "latency" in args.parts:  # a plain client: no event loop here, the servers have theirs
        results["latency"], more = run_latency(args, workdir)
        notes += more
        print_latency(results["latency"])
    if "throughput" in args.parts:
        import uvloop  # the server's loop (uvicorn picks it), so the log runs on it here too

        with measured_load(loads, "throughput"):
            results["throughput"], more = uvloop.run(run_throughput(args, workdir))
        notes += more
        print_throughput(results["throughput"])
        load = loads["throughput"]
        if load is not None:
            print(f"other processes, PostgreSQL included, used {load['foreign_cores']:.2f} cores meanwhile")
    results["machine_load"] = loads
    results["notes"] = notes
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mindfu-bench-log-"))
    started = time.monotonic()
    try:
        results = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    finish(
        results,
        args,
        elapsed,
        packages=["sqlalchemy", "asyncpg", "llama-cpp-python", "uvloop"],
        targets=TARGETS,
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(serve(sys.argv[2:]) if sys.argv[1:2] == ["serve"] else main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
