"""QLoRA training speed and memory: MindFu's QloraTrainer against plain transformers + peft with the same
settings, in the same run, each run in a fresh process (so peak memory is the run's own).

The model is of Mistral's architecture with random weights (a 1B-class config by default; the issue's GPU
check), written once with SmolLM2's tokenizer and chat template; the examples are synthetic chats. Both
sides load the base in 4-bit NF4 with double quantization, put LoRA r16/alpha32/dropout 0.05 on every
linear layer, and train with paged AdamW 8-bit, batch 2 x accumulation 8, gradient checkpointing, bf16
compute. The reference is transformers' own ``Trainer`` over a peft model (no TRL). Runs alternate
(MindFu, reference, reference, MindFu, ...). Per run: training tokens/s over the steps after the first,
and peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS).

On a GPU machine (the numbers that count)::

    python bench/qlora.py --size 1b --steps 12 --rounds 2 --json qlora-gpu.json

On a machine without MindFu's data directory, ``--tokenizer FOLDER`` names a copy of SmolLM2's tokenizer
files (``bench/gpu_qlora.sh`` runs it so on a GPU machine, with the packages it lacks carried as wheels).

A CPU dry run of the same path (tiny model, no 4-bit, plain AdamW)::

    .venv/bin/python bench/qlora.py --size tiny --steps 4 --rounds 1 --no-4bit --optimizer adamw_torch
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from measure import finish, mark

MINDFU, REFERENCE = "mindfu", "reference"
SHAPES = {
    # TinyLlama-1.1B's shapes in Mistral's architecture (grouped-query attention, SiLU MLP)
    "1b": {
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 22,
        "num_attention_heads": 32,
    },
    "tiny": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4},
}
TARGETS = {"mindfu_vs_reference_tokens_per_s": 0.95, "mindfu_vs_reference_peak_memory": 1.05}


def build_model(size: str, tokenizer_from: Path, folder: Path) -> Path:
    """A Mistral-architecture model with random weights and SmolLM2's tokenizer, saved in ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, MistralConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    config = MistralConfig(
        **SHAPES[size],
        num_key_value_heads=8 if size == "1b" else 2,
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        sliding_window=None,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def examples(count: int, words: int) -> list[Any]:
    from mindfu_core.domain.chat import Message, Role
    from mindfu_core.domain.training import ChatExample

    made = []
    for i in range(count):
        answer = " ".join(f"word{(i * 7 + j) % 997}" for j in range(words))
        made.append(
            ChatExample(
                messages=(
                    Message(role=Role.USER, content=f"Tell me about topic {i}."),
                    Message(role=Role.ASSISTANT, content=answer),
                )
            )
        )
    return made


def hyperparameters(args: argparse.Namespace) -> Any:
    from mindfu_core.domain.training import Hyperparameters

    return Hyperparameters(
        max_steps=args.steps,
        batch_size=2,
        gradient_accumulation=8,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        max_seq_length=args.max_seq_length,
        load_in_4bit=args.four_bit,
        optimizer=args.optimizer,
        compute_dtype=args.compute_dtype,
        logging_steps=1,
        save_steps=10**6,
        gradient_checkpointing=True,
        warmup_ratio=0.0,
    )


class StepClock:
    """Times optimizer steps: the run's rate is taken from the end of the first step to the last."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def step(self) -> None:
        self.times.append(time.perf_counter())


def train_mindfu(model: Path, out: Path, args: argparse.Namespace, clock: StepClock) -> None:
    from mindfu_adapters.trainer.qlora import QloraTrainer
    from mindfu_core.ports.trainer import TrainingRequest

    class Callbacks:
        def on_progress(self, progress: Any) -> None:
            clock.step()

        def on_metrics(self, metrics: Any, step: int) -> None:
            pass

        def should_stop(self) -> bool:
            return False

    request = TrainingRequest(
        base_model=str(model),
        output_dir=str(out),
        train=examples(args.examples, args.words),
        hyperparameters=hyperparameters(args),
        resume=False,
        evaluate_base=False,
    )
    QloraTrainer().train(request, Callbacks())


def train_reference(model: Path, out: Path, args: argparse.Namespace, clock: StepClock) -> None:
    """The same settings with transformers' Trainer over a peft model, tokenized the same way."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from mindfu_adapters.trainer.formatting import to_records

    cuda = torch.cuda.is_available()
    hp = hyperparameters(args)
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    kwargs: dict[str, Any] = {"dtype": getattr(torch, hp.compute_dtype) if cuda else torch.float32}
    if hp.load_in_4bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, hp.compute_dtype),
        )
        kwargs["device_map"] = {"": 0} if cuda else {"": "cpu"}
    base = AutoModelForCausalLM.from_pretrained(model, **kwargs)
    if hp.load_in_4bit:
        base = prepare_model_for_kbit_training(
            base, use_gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(base, lora)
    texts = [r["text"] for r in to_records(examples(args.examples, args.words), tokenizer)]
    data = Dataset.from_dict({"text": texts}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=hp.max_seq_length),
        batched=True,
        remove_columns=["text"],
    )

    class Clock(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            clock.step()

    training = TrainingArguments(
        output_dir=str(out),
        max_steps=hp.max_steps,
        per_device_train_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation,
        learning_rate=hp.learning_rate,
        lr_scheduler_type="cosine",
        optim=hp.optimizer,
        logging_steps=1,
        save_strategy="no",
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=cuda and hp.compute_dtype == "bfloat16",
        use_cpu=not cuda,
        report_to="none",
        seed=hp.seed,
        disable_tqdm=True,
    )
    Trainer(
        model=peft_model,
        args=training,
        train_dataset=data,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[Clock()],
    ).train()


def worker(args: argparse.Namespace) -> int:
    """One run in this process; prints its figures as JSON."""
    import resource

    import torch
    from transformers import AutoTokenizer

    from mindfu_adapters.trainer.formatting import to_records

    model = Path(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    lengths = [
        min(len(tokenizer(r["text"])["input_ids"]), args.max_seq_length)
        for r in to_records(examples(args.examples, args.words), tokenizer)
    ]
    clock = StepClock()
    out = Path(tempfile.mkdtemp(prefix=f"qlora-{args.worker}-"))
    started = time.perf_counter()
    try:
        (train_mindfu if args.worker == MINDFU else train_reference)(model, out, args, clock)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if len(clock.times) < 2:
        raise SystemExit("fewer than two optimizer steps were timed")
    per_step = 2 * 8 * statistics.fmean(lengths)  # examples per optimizer step x their mean tokens
    timed = clock.times[-1] - clock.times[0]
    figures = {
        "target": args.worker,
        "steps": len(clock.times),
        "tokens_per_s": per_step * (len(clock.times) - 1) / timed,
        "seconds_per_step": timed / (len(clock.times) - 1),
        "wall_s": time.perf_counter() - started,
        "peak_memory_bytes": (
            torch.cuda.max_memory_allocated()
            if torch.cuda.is_available()
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        ),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    print("RESULT " + json.dumps(figures), flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SHAPES), default="1b")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--words", type=int, default=300, help="words per synthetic answer")
    parser.add_argument("--max-seq-length", type=int, default=1024)
    parser.add_argument("--4bit", dest="four_bit", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--optimizer", default="paged_adamw_8bit")
    parser.add_argument("--compute-dtype", default="bfloat16")
    parser.add_argument("--model", help="an existing model folder (default: built here from --size)")
    parser.add_argument(
        "--tokenizer",
        type=Path,
        help="a folder of tokenizer files (with a chat template) to build the model with "
        "(default: SmolLM2's Hugging Face folder in MindFu's data directory)",
    )
    parser.add_argument("--worker", choices=(MINDFU, REFERENCE), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="mindfu-qlora-bench-"))
    try:
        if args.model is None:
            source: Path | None = args.tokenizer
            if source is None:
                from mindfu_adapters.export.hf import find_trainable
                from mindfu_adapters.settings import DEFAULT_MODEL_ID, default_data_dir

                source = find_trainable(default_data_dir(), DEFAULT_MODEL_ID)
                if source is None:
                    print(
                        "SmolLM2's Hugging Face folder (its tokenizer) is missing: run `make install`, "
                        "or name a folder of its tokenizer files with --tokenizer",
                        file=sys.stderr,
                    )
                    return 2
            print(f"building a {args.size} Mistral-architecture model with random weights ...", flush=True)
            args.model = str(build_model(args.size, source, workdir / f"mistral-{args.size}"))
        runs: list[dict[str, Any]] = []
        order = [MINDFU, REFERENCE]
        for rnd in range(args.rounds):
            for target in order if rnd % 2 == 0 else order[::-1]:
                command = [sys.executable, __file__, "--worker", target, "--model", args.model]
                for name in ("steps", "examples", "words", "max_seq_length", "optimizer", "compute_dtype"):
                    command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
                command.append("--4bit" if args.four_bit else "--no-4bit")
                done = subprocess.run(
                    command, capture_output=True, text=True, env=os.environ.copy(), check=False
                )
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if done.returncode != 0 or not lines:
                    print(done.stdout[-3000:], done.stderr[-6000:], sep="\n", file=sys.stderr)
                    return 1
                run = json.loads(lines[-1].removeprefix("RESULT "))
                runs.append(run)
                print(
                    f"round {rnd + 1} {target:9} {run['tokens_per_s']:9.1f} tok/s  "
                    f"peak {run['peak_memory_bytes'] / 2**30:6.2f} GiB",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    per = {
        target: {
            "tokens_per_s_median": statistics.median(
                r["tokens_per_s"] for r in runs if r["target"] == target
            ),
            "peak_memory_gib_max": max(r["peak_memory_bytes"] for r in runs if r["target"] == target) / 2**30,
        }
        for target in (MINDFU, REFERENCE)
    }
    ratios = {
        "mindfu_vs_reference_tokens_per_s": per[MINDFU]["tokens_per_s_median"]
        / per[REFERENCE]["tokens_per_s_median"],
        "mindfu_vs_reference_peak_memory": per[MINDFU]["peak_memory_gib_max"]
        / per[REFERENCE]["peak_memory_gib_max"],
    }
    speed, memory = ratios["mindfu_vs_reference_tokens_per_s"], ratios["mindfu_vs_reference_peak_memory"]
    print(f"\ntraining tokens/s, MindFu vs transformers + peft: {speed:.3f}x {mark(speed >= 0.95)}")
    print(f"peak memory, MindFu vs transformers + peft: {memory:.3f}x {mark(memory <= 1.05)}")
    notes = [f"device: {runs[0]['device']}"] if runs else []
    if runs and runs[0]["device"] == "cpu":
        notes.append("CPU run: a dry run of the path; speed and memory figures count on a GPU only")
    finish(
        {"per_target": per, "ratios": ratios, "runs": runs, "notes": notes},
        args,
        time.monotonic() - started,
        packages=("torch", "transformers", "peft", "trl", "bitsandbytes"),
        targets=TARGETS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
