"""QloraTrainer: a base model in 4-bit NF4 (double quantization), LoRA on every linear layer, trl's
SFTTrainer with paged AdamW 8-bit, gradient checkpointing, evaluation, checkpoints and resume.

The same code runs without CUDA (bitsandbytes 0.50 quantizes to 4 bits on the CPU); what it had to change
to run here is returned in ``TrainingOutcome.notes``. Heavy libraries are imported inside the methods.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mindfu_adapters.trainer.formatting import to_records
from mindfu_adapters.trainer.merge import merge_adapter
from mindfu_core.domain.training import ChatExample, Hyperparameters, Progress, TrainingOutcome
from mindfu_core.errors import EngineFailure, InvalidRequest
from mindfu_core.ports.trainer import TrainingCallbacks, TrainingRequest

log = logging.getLogger(__name__)
ADAPTER = "adapter"
#: Metrics passed on to the tracker, under these names.
METRICS = {
    "loss": "loss",
    "eval_loss": "eval_loss",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
}


def _dtype(name: str) -> Any:
    import torch

    try:
        dtype = getattr(torch, name)
    except AttributeError:
        raise InvalidRequest(
            f"unknown compute dtype {name!r}", param="hyperparameters.compute_dtype"
        ) from None
    if not isinstance(dtype, torch.dtype):
        raise InvalidRequest(f"unknown compute dtype {name!r}", param="hyperparameters.compute_dtype")
    return dtype


def _load_tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base_model)
    except (OSError, ValueError) as error:
        raise InvalidRequest(f"cannot load the base model's tokenizer from {base_model!r}: {error}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidRequest(f"the base model {base_model!r} has no chat template to format examples with")
    return tokenizer


def quantization_config(hp: Hyperparameters, cuda: bool, notes: list[str]) -> Any:
    """The 4-bit NF4 ``BitsAndBytesConfig`` the base model is loaded with for training (None: 16-bit)."""
    if not hp.load_in_4bit:
        return None
    from transformers import BitsAndBytesConfig

    if not cuda:
        notes.append("no CUDA: 4-bit NF4 runs on the CPU through bitsandbytes (slow; for correctness only)")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=hp.double_quant,
        bnb_4bit_compute_dtype=_dtype(hp.compute_dtype),
    )


def _load_model(
    base_model: str, hp: Hyperparameters, cuda: bool, notes: list[str], *, for_training: bool
) -> Any:
    from transformers import AutoModelForCausalLM

    quantization = quantization_config(hp, cuda, notes) if for_training else None
    kwargs: dict[str, Any] = {"dtype": _dtype(hp.compute_dtype) if cuda else "float32"}
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = {"": 0} if cuda else {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    except (OSError, ValueError) as error:
        raise InvalidRequest(f"cannot load the base model {base_model!r}: {error}") from None
    if quantization is not None and for_training:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=hp.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return model


def _bridge(callbacks: TrainingCallbacks) -> Any:
    from transformers import TrainerCallback

    class Bridge(TrainerCallback):
        """Progress, metrics and cancellation between the Hugging Face loop and the port's callbacks."""

        def __init__(self) -> None:
            self.training = False  # evaluations before training (the base model's) are not the run's
            self.num_tokens: int | None = None
            self.started = time.monotonic()
            self.first_step: int | None = None
            self.last: dict[str, float] = {}
            self.tokens: tuple[float, float] | None = None  # (num_tokens, time) at the last log
            self.tokens_per_s: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> Any:
            self.training = True
            return control

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> Any:
            if self.first_step is None:
                self.first_step, self.started = state.global_step - 1, time.monotonic()
            done = state.global_step - self.first_step
            elapsed = time.monotonic() - self.started
            left = max(state.max_steps - state.global_step, 0)
            callbacks.on_progress(
                Progress(
                    step=state.global_step,
                    total_steps=state.max_steps,
                    epoch=float(state.epoch or 0.0),
                    loss=self.last.get("loss"),
                    eval_loss=self.last.get("eval_loss"),
                    learning_rate=self.last.get("learning_rate"),
                    tokens_per_s=self.tokens_per_s,
                    eta_s=elapsed / done * left if done > 0 else None,
                )
            )
            if callbacks.should_stop():
                control.should_training_stop = True
                control.should_save = True  # a cancelled job can resume from here
            return control

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **_: Any
        ) -> Any:
            logs = logs or {}
            if not self.training:
                return control
            metrics = {METRICS[k]: float(v) for k, v in logs.items() if k in METRICS and v is not None}
            if "num_tokens" in logs:
                self.num_tokens = int(float(logs["num_tokens"]))
                now = time.monotonic()
                if self.tokens is not None and now > self.tokens[1]:
                    self.tokens_per_s = (float(logs["num_tokens"]) - self.tokens[0]) / (now - self.tokens[1])
                    metrics["tokens_per_s"] = self.tokens_per_s
                self.tokens = (float(logs["num_tokens"]), now)
            if metrics:
                self.last.update(metrics)
                callbacks.on_metrics(metrics, state.global_step)
            return control

    return Bridge()


def training_arguments(
    hp: Hyperparameters, cuda: bool, output: Path, *, examples: int, validation: bool
) -> dict[str, Any]:
    """The keyword arguments of the ``SFTConfig`` (trl's ``TrainingArguments``) ``QloraTrainer.train``
    trains with. A dict, as transformers checks bf16 against the machine when the config is built."""
    steps_per_epoch = max(1, math.ceil(examples / (hp.batch_size * hp.gradient_accumulation)))
    return {
        "output_dir": str(output),
        "num_train_epochs": hp.epochs,
        "max_steps": hp.max_steps if hp.max_steps is not None else -1,
        "per_device_train_batch_size": hp.batch_size,
        "per_device_eval_batch_size": hp.batch_size,
        "gradient_accumulation_steps": hp.gradient_accumulation,
        "learning_rate": hp.learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": max(0, round(hp.warmup_ratio * steps_per_epoch * hp.epochs)),
        "optim": hp.optimizer,
        "logging_steps": hp.logging_steps,
        "save_strategy": "steps",
        "save_steps": hp.save_steps,
        "save_total_limit": 2,
        "eval_strategy": ("steps" if hp.eval_steps else "epoch") if validation else "no",
        "eval_steps": hp.eval_steps,
        "gradient_checkpointing": hp.gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "bf16": cuda and hp.compute_dtype == "bfloat16",
        "fp16": cuda and hp.compute_dtype == "float16",
        "use_cpu": not cuda,
        "max_length": hp.max_seq_length,
        "dataset_text_field": "text",
        "packing": False,
        "report_to": "none",
        "seed": hp.seed,
        "disable_tqdm": True,
    }


def lora_config(hp: Hyperparameters) -> Any:
    """The ``LoraConfig`` of the adapter ``QloraTrainer.train`` trains: every linear layer."""
    from peft import LoraConfig

    return LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


class QloraTrainer:
    """The Trainer port with transformers, peft, trl and bitsandbytes."""

    def train(self, request: TrainingRequest, callbacks: TrainingCallbacks) -> TrainingOutcome:
        import torch
        from datasets import Dataset
        from transformers.trainer_callback import PrinterCallback
        from transformers.trainer_utils import get_last_checkpoint
        from trl import SFTConfig, SFTTrainer

        hp = request.hyperparameters
        cuda = torch.cuda.is_available()
        notes: list[str] = []
        if not request.train:
            raise InvalidRequest("no training examples")
        tokenizer = _load_tokenizer(request.base_model)
        model = _load_model(request.base_model, hp, cuda, notes, for_training=True)
        optimizer = hp.optimizer
        if not cuda and "paged" in optimizer:
            notes.append(f"no CUDA: {optimizer} runs without paging (bitsandbytes pages only GPU memory)")
        if not cuda and hp.compute_dtype != "float32":
            notes.append(
                f"no CUDA: weights outside the 4-bit layers stay float32 (compute {hp.compute_dtype})"
            )
        output = Path(request.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        train = Dataset.from_list(to_records(request.train, tokenizer))
        validation = (
            Dataset.from_list(to_records(request.validation, tokenizer)) if request.validation else None
        )
        config = SFTConfig(
            **training_arguments(hp, cuda, output, examples=len(train), validation=validation is not None)
        )
        lora = lora_config(hp)
        bridge = _bridge(callbacks)
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=train,
            eval_dataset=validation,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[bridge],
        )
        trainer.remove_callback(PrinterCallback)  # progress goes to the callbacks, not stdout
        resume = get_last_checkpoint(str(output)) if request.resume and output.exists() else None
        base_loss = None
        if validation is not None and request.evaluate_base and resume is None:
            base_loss = float(trainer.evaluate()["eval_loss"])  # LoRA starts as a no-op: this is the base
            callbacks.on_metrics({"base_eval_loss": base_loss}, 0)
        if resume is not None:
            notes.append(f"resumed from {Path(resume).name}")
        try:
            result = trainer.train(resume_from_checkpoint=resume)
        except torch.OutOfMemoryError as error:
            raise EngineFailure(f"out of memory while training: {error}") from None
        adapter = output / ADAPTER
        trainer.save_model(str(adapter))
        tokenizer.save_pretrained(str(adapter))
        eval_loss = None
        if validation is not None:
            eval_loss = float(trainer.evaluate()["eval_loss"])
            callbacks.on_metrics({"eval_loss": eval_loss}, trainer.state.global_step)
        tokens = bridge.num_tokens
        return TrainingOutcome(
            adapter_dir=str(adapter),
            steps=int(trainer.state.global_step),
            train_loss=float(result.training_loss) if result.training_loss is not None else None,
            eval_loss=eval_loss,
            base_eval_loss=base_loss,
            tokens=tokens,
            notes=tuple(notes),
        )

    def evaluate(
        self,
        base_model: str,
        adapter_dir: str | None,
        examples: Sequence[ChatExample],
        *,
        max_seq_length: int,
    ) -> float:
        import torch

        tokenizer = _load_tokenizer(adapter_dir or base_model)
        model = _load_model(base_model, Hyperparameters(load_in_4bit=False), False, [], for_training=False)
        if adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir)
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for record in to_records(examples, tokenizer):
                ids = tokenizer(
                    record["text"], return_tensors="pt", truncation=True, max_length=max_seq_length
                )
                tokens = int(ids["input_ids"].shape[1])
                if tokens < 2:
                    continue
                loss = model(**ids, labels=ids["input_ids"]).loss
                total += float(loss) * (tokens - 1)
                count += tokens - 1
        if count == 0:
            raise InvalidRequest("no example is long enough to evaluate on")
        return total / count

    def merge(self, base_model: str, adapter_dir: str, output_dir: str, *, dtype: str = "auto") -> str:
        return merge_adapter(base_model, adapter_dir, output_dir, dtype=dtype)
