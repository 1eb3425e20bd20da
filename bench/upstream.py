"""Upstream engine overhead: streamed chat through MindFu with ``MINDFU_LLM__BACKEND=openai`` in front of an
OpenAI-compatible server, against that same server asked directly, in the same run.

The upstream is llama-cpp-python's own server (``python -m llama_cpp.server``) on the embedded SmolLM2.
Requests alternate between the two targets (direct, through MindFu, then the other order ...), one at a
time, with the same SSE client code as ``gateway.py``. Per request: time to the first content token and
decode speed. Paired ratios compare the same (round, prompt) on both targets. Target from the issue:
tokens/s through MindFu >= 0.97x the upstream's alone.

Usage::

    python bench/upstream.py [--rounds N] [--max-tokens M] [--threads T] [--json OUT]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway import (
    MODEL_ID,
    Sample,
    Server,
    _kill_all,
    free_port,
    pair_notes,
    print_pair,
    run_pair,
    start_llama_server,
    start_server,
    summarise_pair,
)
from measure import finish, mark

DIRECT, MINDFU = "direct", "mindfu"
TARGETS = {"mindfu_vs_direct_tps": 0.97}


def start_mindfu(upstream: Server, workdir: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDFU_")}
    env.update(
        MINDFU_DATA_DIR=str(workdir / "mindfu-data"),
        MINDFU_CONFIG_FILE=str(workdir / "no-mindfu.toml"),
        MINDFU_LLM__BACKEND="openai",
        MINDFU_LLM__BASE_URL=upstream.base_url + "/v1",
        MINDFU_LLM__MODEL_ID=MODEL_ID,
        MINDFU_RAG__ENABLED="false",  # the upstream's own speed, not retrieval's, is compared
        MINDFU_LOG_LEVEL="WARNING",
    )
    exe = Path(sys.executable).with_name("mindfu")
    command = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "mindfu_cli"])]
    command += ["serve", "--port", str(port), "--grpc-port", "0"]
    return start_server(MINDFU, command, env=env, ready_path="/health/ready", port=port, workdir=workdir)


def summarise(samples: Sequence[Sample]) -> dict[str, Any]:
    found = summarise_pair(samples, DIRECT, MINDFU)
    ratios = {
        "mindfu_vs_direct_tps": found["tps"],
        "paired_mindfu_vs_direct_tps": found["paired_tps"],
        "added_ttft_ms_p50": found["added_ttft_ms_p50"],
        "paired_added_ttft_ms_p50": found["paired_added_ttft_ms_p50"],
    }
    return {"per_target": found["per_target"], "ratios": ratios}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=8, help="rounds of every prompt on both targets")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="the upstream's threads")
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    if args.model is None:
        from mindfu_adapters.llm.backends import default_model_path

        args.model = default_model_path()
    workdir = Path(tempfile.mkdtemp(prefix="mindfu-upstream-"))
    started = time.monotonic()
    try:
        print("starting llama_cpp.server and MindFu in front of it ...", flush=True)
        upstream = start_llama_server(args.model.resolve(), threads=args.threads, workdir=workdir)
        servers = {DIRECT: upstream, MINDFU: start_mindfu(upstream, workdir)}
        samples, load = run_pair(servers, (DIRECT, MINDFU), args)
    finally:
        _kill_all()
    summary = summarise(samples)
    notes = pair_notes(samples, (DIRECT, MINDFU), load, "targets")
    per, ratios = summary["per_target"], summary["ratios"]
    print_pair(per, (DIRECT, MINDFU))
    tps, paired = ratios["mindfu_vs_direct_tps"], ratios["paired_mindfu_vs_direct_tps"]
    ok = mark(tps >= TARGETS["mindfu_vs_direct_tps"])
    print(f"\ntokens/s through MindFu vs direct: {tps:.3f}x (paired {paired:.3f}x)  target >= 0.97 {ok}")
    added, paired_added = ratios["added_ttft_ms_p50"], ratios["paired_added_ttft_ms_p50"]
    print(f"added TTFT p50: {added:+.2f} ms (paired {paired_added:+.2f} ms)")
    finish(
        {**summary, "notes": notes},
        args,
        time.monotonic() - started,
        packages=("llama-cpp-python", "httpx"),
        targets=TARGETS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
