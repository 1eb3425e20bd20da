"""Trainer adapters: QLoRA with transformers, peft, trl and bitsandbytes."""
