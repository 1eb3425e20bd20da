"""``mindfu models list``: what is configured, without loading any model."""

from __future__ import annotations

import sys
from typing import Any

from mindfu_core.errors import MindFuError


def prepare_models(*, force: bool) -> int:
    import time

    from mindfu_adapters import container
    from mindfu_adapters.settings import Settings

    started = time.monotonic()
    try:
        path = container.prepare_models(Settings(), force=force)
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 2
    print(f"embedding model ready in {path} ({time.monotonic() - started:.1f} s)")
    started = time.monotonic()
    try:
        trainable = container.prepare_trainable(Settings(), force=force)
    except MindFuError as exc:
        print(f"mindfu: the served model cannot be prepared for fine-tuning: {exc.message}", file=sys.stderr)
        return 0
    if trainable is not None:
        print(f"trainable weights of the served model in {trainable} ({time.monotonic() - started:.1f} s)")
    return 0


def pull_model(name: str) -> int:
    from mindfu_adapters import container
    from mindfu_adapters.settings import Settings

    try:
        path = container.pull_model(Settings(), name)
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 2
    print(f"{name} is in {path}; use it with MINDFU_EMBEDDING__MODEL_NAME={name}")
    return 0


def _model_rows(settings: Any) -> list[tuple[str, str, str, str, str]]:
    """(id, engine, context, source, state) for every configured model and LoRA adapter."""
    from pathlib import Path

    from mindfu_adapters.container import describe_model
    from mindfu_adapters.llm_settings import InProcessSettings

    rows: list[tuple[str, str, str, str, str]] = []
    for llm in (settings.llm, *settings.models):
        context = str(llm.context_length)
        try:
            model_id, source = describe_model(llm, settings.data_dir)
        except MindFuError as exc:
            rows.append((llm.model_id or "?", llm.backend, context, exc.message, "MISSING"))
            continue
        if llm.backend == "openai":
            state = "upstream"
        elif Path(source).exists():
            state = "ok"
        else:  # vLLM takes hub ids too
            state = "hub id" if llm.backend == "vllm" and not source.startswith("/") else "MISSING"
        rows.append((model_id, llm.backend, context, source, state))
        adapters = llm.lora_adapters if isinstance(llm, InProcessSettings) else {}
        for name, adapter in adapters.items():
            rows.append(
                (name, f"{llm.backend} lora", context, str(adapter), "ok" if adapter.exists() else "MISSING")
            )
        rows.extend(
            (alias, "alias", context, f"-> {rows[-1 - len(adapters)][0]}", "") for alias in llm.aliases
        )
    return rows


def list_served(server: str) -> int:
    """The models a running server serves (fine-tuned ones included), as its application lists them."""
    import asyncio

    from mindfu_cli.connect import application
    from mindfu_core.domain.chat import ModelInfo

    async def run() -> list[ModelInfo]:
        async with application(server) as app:
            return await app.chat.list_models()

    try:
        served = asyncio.run(run())
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 1
    print(f"{'ID':<40} {'ENGINE':<15} {'CONTEXT':>7}  SOURCE")
    for info in served:
        print(f"{info.id:<40} {info.engine:<15} {info.context_length:>7}  {info.source}")
    return 0


def list_models(server: str | None = None) -> int:
    """Every model the settings serve (MINDFU_LLM and MINDFU_MODELS), their LoRA adapters and aliases,
    without loading any; with ``server``, what that server serves."""
    from mindfu_adapters.settings import Settings

    if server is not None:
        return list_served(server)

    try:
        rows = _model_rows(Settings())
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 2
    print(f"{'ID':<32} {'ENGINE':<15} {'CONTEXT':>7}  SOURCE")
    for model_id, engine, context, source, state in rows:
        shown = f"{source} [{state}]" if state else source
        print(f"{model_id:<32} {engine:<15} {context:>7}  {shown}")
    return 0
