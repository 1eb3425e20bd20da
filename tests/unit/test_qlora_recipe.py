"""The QLoRA recipe at its defaults, read from the config objects QloraTrainer.train hands to transformers,
peft and trl (not from Hyperparameters' constants): 4-bit NF4 with double quantization, LoRA r16/alpha32
with dropout 0.05 on every linear layer, batch 2 x accumulation 8 (16 per optimizer step), metrics every 10
steps, paged AdamW 8-bit in bf16 on CUDA. A change to any of them fails here."""

from __future__ import annotations

from pathlib import Path

from mindfu_adapters.trainer.qlora import lora_config, quantization_config, training_arguments
from mindfu_core.domain.training import Hyperparameters


def test_the_4bit_quantization_is_nf4_with_double_quantization() -> None:
    import torch
    from transformers import BitsAndBytesConfig

    notes: list[str] = []
    config = quantization_config(Hyperparameters(), True, notes)
    assert isinstance(config, BitsAndBytesConfig)
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant is True
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert notes == []  # nothing changed on CUDA
    assert quantization_config(Hyperparameters(load_in_4bit=False), True, notes) is None


def test_lora_and_training_arguments_at_their_defaults_on_cuda(tmp_path: Path) -> None:
    from peft import LoraConfig
    from trl import SFTConfig

    lora = lora_config(Hyperparameters())
    assert isinstance(lora, LoraConfig)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (16, 32, 0.05)
    assert lora.target_modules == "all-linear" and lora.task_type == "CAUSAL_LM"
    kwargs = training_arguments(Hyperparameters(), True, tmp_path, examples=1000, validation=True)
    assert kwargs["bf16"] and not kwargs["fp16"] and not kwargs["use_cpu"]
    # transformers refuses bf16 on a machine without a GPU when the config is built: build it for the CPU
    args = SFTConfig(**{**kwargs, "bf16": False, "use_cpu": True})
    assert args.per_device_train_batch_size == 2 and args.gradient_accumulation_steps == 8
    assert args.logging_steps == 10
    assert args.optim == "paged_adamw_8bit"
    assert args.num_train_epochs == 3 and args.learning_rate == 2e-4
    assert args.lr_scheduler_type == "cosine"
    assert args.warmup_steps == round(0.03 * 63 * 3)  # 1000 examples: 63 optimizer steps an epoch
    assert args.gradient_checkpointing and args.eval_strategy == "epoch"
    assert args.report_to in ([], "none")  # MindFu's tracker logs the metrics, not transformers'


def test_without_cuda_the_same_recipe_runs_on_the_cpu(tmp_path: Path) -> None:
    from trl import SFTConfig

    kwargs = training_arguments(Hyperparameters(), False, tmp_path, examples=10, validation=False)
    args = SFTConfig(**kwargs)
    assert args.use_cpu and not args.bf16 and args.optim == "paged_adamw_8bit"
    assert args.eval_strategy == "no"
    notes: list[str] = []
    quantization_config(Hyperparameters(), False, notes)
    assert notes and "CPU" in notes[0]
