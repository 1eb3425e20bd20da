"""``mindfu models list``: what is configured, without loading any model."""

from __future__ import annotations

import sys

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


def list_models() -> int:
    from mindfu_adapters.container import resolve_model
    from mindfu_adapters.settings import Settings

    settings = Settings()
    if settings.llm.backend == "openai":
        from mindfu_adapters.container import served_model_id

        print(f"{'ID':<32} {'ENGINE':<10} {'CONTEXT':>7}  {'UPSTREAM'}")
        model_id = served_model_id(settings) or "(MINDFU_LLM__MODEL_ID unset)"
        print(f"{model_id:<32} {'openai':<10} {settings.llm.context_length:>7}  {settings.llm.base_url}")
        return 0
    try:
        path, model_id = resolve_model(settings.llm)
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 2
    present = "ok" if path.is_file() else "MISSING"
    print(f"{'ID':<32} {'ENGINE':<10} {'CONTEXT':>7}  {'FILE'}")
    print(f"{model_id:<32} {settings.llm.backend:<10} {settings.llm.context_length:>7}  {path} [{present}]")
    return 0
