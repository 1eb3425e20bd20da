"""Gateway/core split benchmark: streamed chat through ``gateway -> gRPC -> core`` against the
single-process server, same model, prompts and greedy sampling.

Two deployments run side by side, each on its own data directory:

* ``single``  - ``mindfu serve`` (HTTP and the engine in one process);
* ``split``   - ``mindfu serve --role core`` (gRPC only) and ``mindfu serve --role gateway --core ...``
  (the HTTP facade over the gRPC client) in front of it.

Requests alternate between the two (single, split, then split, single, ...), one at a time, through the
same SSE client code as ``gateway.py``. Per request: time to the first content token and decode speed
(content chunks after the first over the time they took). Paired ratios compare the same (round, prompt)
on both deployments. Targets from the issue: tokens/s ratio >= 0.95 and <= 3 ms added TTFT at p50.

Usage::

    python bench/topology.py [--rounds N] [--max-tokens M] [--threads T] [--json OUT]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc

import grpc
from gateway import (
    _CHILDREN,
    MODEL_ID,
    Sample,
    Server,
    _kill_all,
    free_port,
    pair_notes,
    print_pair,
    run_pair,
    start_server,
    summarise_pair,
)
from measure import finish, mark

SINGLE, SPLIT = "single", "split"
TARGETS = {"split_vs_single_tps": 0.95, "added_ttft_ms_p50": 3.0}


def _env(model: Path, threads: int, data_dir: Path, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDFU_")}
    env.update(
        MINDFU_DATA_DIR=str(data_dir),
        MINDFU_CONFIG_FILE=str(workdir / "no-mindfu.toml"),
        MINDFU_LLM__MODEL_PATH=str(model),
        MINDFU_LLM__MODEL_ID=MODEL_ID,
        MINDFU_LLM__THREADS=str(threads),
        MINDFU_LOG_LEVEL="WARNING",
    )
    return env


def _mindfu() -> list[str]:
    exe = Path(sys.executable).with_name("mindfu")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mindfu_cli"]


def start_single(model: Path, threads: int, workdir: Path) -> Server:
    port = free_port()
    env = _env(model, threads, workdir / "single-data", workdir)
    command = [*_mindfu(), "serve", "--port", str(port), "--grpc-port", "0"]
    return start_server(SINGLE, command, env=env, ready_path="/health/ready", port=port, workdir=workdir)


def start_split(model: Path, threads: int, workdir: Path, timeout: float = 180.0) -> Server:
    grpc_port, port = free_port(), free_port()
    env = _env(model, threads, workdir / "split-data", workdir)
    log = workdir / "core.log"
    with log.open("wb") as out:
        core = subprocess.Popen(
            [*_mindfu(), "serve", "--role", "core", "--grpc-port", str(grpc_port)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _CHILDREN.append(core)
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if core.poll() is not None:
                raise RuntimeError(f"the core exited with {core.returncode}:\n{log.read_text()}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the core was not ready after {timeout:.0f} s:\n{log.read_text()}")
            time.sleep(0.25)
    command = [
        *_mindfu(),
        "serve",
        "--role",
        "gateway",
        "--core",
        f"127.0.0.1:{grpc_port}",
        "--port",
        str(port),
    ]
    return start_server(SPLIT, command, env=env, ready_path="/health/ready", port=port, workdir=workdir)


def summarise(samples: Sequence[Sample]) -> dict[str, Any]:
    found = summarise_pair(samples, SINGLE, SPLIT)
    ratios = {
        "split_vs_single_tps": found["tps"],
        "paired_split_vs_single_tps": found["paired_tps"],
        "added_ttft_ms_p50": found["added_ttft_ms_p50"],
        "paired_added_ttft_ms_p50": found["paired_added_ttft_ms_p50"],
    }
    return {"per_target": found["per_target"], "ratios": ratios}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds of every prompt on both deployments")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="llama.cpp threads")
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    if args.model is None:
        from mindfu_adapters.llm.backends import default_model_path

        args.model = default_model_path()
    model: Path = args.model.resolve()
    workdir = Path(tempfile.mkdtemp(prefix="mindfu-topology-"))
    started = time.monotonic()
    try:
        print(f"model {model}\nstarting the single-process server and the core + gateway ...", flush=True)
        servers = {
            SINGLE: start_single(model, args.threads, workdir),
            SPLIT: start_split(model, args.threads, workdir),
        }
        samples, load = run_pair(servers, (SINGLE, SPLIT), args)
    finally:
        _kill_all()
    summary = summarise(samples)
    notes = pair_notes(samples, (SINGLE, SPLIT), load, "deployments")
    per, ratios = summary["per_target"], summary["ratios"]
    print_pair(per, (SINGLE, SPLIT))
    tps, paired_tps = ratios["split_vs_single_tps"], ratios["paired_split_vs_single_tps"]
    ttft, paired_ttft = ratios["added_ttft_ms_p50"], ratios["paired_added_ttft_ms_p50"]
    tps_ok, ttft_ok = mark(tps >= TARGETS["split_vs_single_tps"]), mark(ttft <= TARGETS["added_ttft_ms_p50"])
    print(f"\ntokens/s split vs single: {tps:.3f}x (paired {paired_tps:.3f}x)  target >= 0.95 {tps_ok}")
    print(f"added TTFT p50: {ttft:+.2f} ms (paired {paired_ttft:+.2f} ms)  target <= 3 ms {ttft_ok}")
    finish(
        {**summary, "notes": notes},
        args,
        time.monotonic() - started,
        packages=("grpcio", "llama-cpp-python"),
        targets=TARGETS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
