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

import httpx

from gateway import (
    _CHILDREN,
    MODEL_ID,
    PROMPTS,
    Sample,
    Server,
    _kill_all,
    free_port,
    start_llama_server,
    start_server,
    stream_http,
)
from measure import cpu_snapshot, finish, foreign_load, mark, median, percentile, rotation

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
    per: dict[str, Any] = {}
    for target in (DIRECT, MINDFU):
        mine = [s for s in samples if s.target == target]
        rates = [r for s in mine if (r := s.tokens_per_s) is not None]
        ttfts = [s.ttft_s * 1000 for s in mine]
        per[target] = {
            "requests": len(mine),
            "tokens_per_s_median": median(rates),
            "tokens_per_s_p10": percentile(rates, 0.10),
            "tokens_per_s_p90": percentile(rates, 0.90),
            "ttft_ms_p50": median(ttfts),
            "ttft_ms_p90": percentile(ttfts, 0.90),
        }
    direct = {(s.round, s.prompt): s for s in samples if s.target == DIRECT}
    pairs = [
        (s, direct[(s.round, s.prompt)])
        for s in samples
        if s.target == MINDFU and (s.round, s.prompt) in direct
    ]
    rate_ratios = [a.tokens_per_s / b.tokens_per_s for a, b in pairs if a.tokens_per_s and b.tokens_per_s]
    ratios = {
        "mindfu_vs_direct_tps": per[MINDFU]["tokens_per_s_median"] / per[DIRECT]["tokens_per_s_median"],
        "paired_mindfu_vs_direct_tps": median(rate_ratios),
        "added_ttft_ms_p50": per[MINDFU]["ttft_ms_p50"] - per[DIRECT]["ttft_ms_p50"],
        "paired_added_ttft_ms_p50": median([(a.ttft_s - b.ttft_s) * 1000 for a, b in pairs]),
    }
    return {"per_target": per, "ratios": ratios}


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
        from mindfu_adapters.container import default_model_path

        args.model = default_model_path()
    workdir = Path(tempfile.mkdtemp(prefix="mindfu-upstream-"))
    samples: list[Sample] = []
    started = time.monotonic()
    try:
        print("starting llama_cpp.server and MindFu in front of it ...", flush=True)
        upstream = start_llama_server(args.model.resolve(), threads=args.threads, workdir=workdir)
        servers = {DIRECT: upstream, MINDFU: start_mindfu(upstream, workdir)}
        before = cpu_snapshot(c.pid for c in _CHILDREN)
        with httpx.Client(timeout=httpx.Timeout(300.0)) as client:
            for rnd in range(-args.warmup, args.rounds):
                for index in range(len(PROMPTS)):
                    for target in rotation((DIRECT, MINDFU), rnd * len(PROMPTS) + index):
                        sample = stream_http(
                            client, servers[target].base_url, PROMPTS[index], args.max_tokens,
                            target=target, rnd=rnd, index=index,
                        )  # fmt: skip
                        if rnd >= 0:
                            samples.append(sample)
                print(f"round {rnd + 1}/{args.rounds} done" if rnd >= 0 else "warm-up done", flush=True)
        load = foreign_load(before, cpu_snapshot(c.pid for c in _CHILDREN))
    finally:
        _kill_all()
    summary = summarise(samples)
    notes: list[str] = []
    texts = {t: {s.prompt: s.text for s in samples if s.target == t} for t in (DIRECT, MINDFU)}
    differing = [i for i in texts[DIRECT] if texts[DIRECT][i] != texts[MINDFU].get(i)]
    if differing:
        notes.append(f"greedy answers differ between the targets for prompts {differing}")
    if load is not None and load["foreign_cores"] > 0.25:
        notes.append(f"other processes used {load['foreign_cores']:.2f} cores during the run: expect noise")
    per, ratios = summary["per_target"], summary["ratios"]
    print(f"\n{'':10} {'tok/s p50':>10} {'p10':>8} {'p90':>8} {'TTFT p50 ms':>12} {'p90':>8}")
    for target in (DIRECT, MINDFU):
        row = per[target]
        print(
            f"{target:10} {row['tokens_per_s_median']:10.1f} {row['tokens_per_s_p10']:8.1f} "
            f"{row['tokens_per_s_p90']:8.1f} {row['ttft_ms_p50']:12.2f} {row['ttft_ms_p90']:8.2f}"
        )
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
