"""Factories of fine-tuning the container's providers call: the job store, the worker-process runner (with
the trainable weights of each served model), and the TrainingService with its scheduler and publisher."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mindfu_adapters.llm.backends import backend_of
from mindfu_adapters.llm_settings import AnyLlmSettings, LlamaCppSettings
from mindfu_adapters.settings import Settings
from mindfu_core.ports.conversation_store import CompletionLog
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.ports.training_jobs import TrainingJobStore
from mindfu_core.ports.training_runner import TrainingRunner
from mindfu_core.services.chat import ChatService
from mindfu_core.services.conversations import ConversationService
from mindfu_core.services.training import TrainingService

if TYPE_CHECKING:
    from mindfu_adapters.store.sql import Database


def prepare_trainable(settings: Settings, served: tuple[Path, str], *, force: bool = False) -> Path | None:
    """Dequantize the served GGUF into trainable Hugging Face weights (None without the training stack)."""
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("peft") is None:
        return None
    from mindfu_adapters.export.hf import gguf_to_hf, trainable_dir

    path, model_id = served
    return gguf_to_hf(path, trainable_dir(settings.data_dir.expanduser(), model_id), force=force)


def base_models(settings: Settings, served_model_id: str | None) -> dict[str, Path]:
    """Trainable weights per served model id: the settings', and the served model's prepared folder."""
    from mindfu_adapters.export.hf import find_trainable

    found: dict[str, Path] = {}
    model_id = served_model_id
    if model_id is not None and (prepared := find_trainable(settings.data_dir.expanduser(), model_id)):
        found[model_id] = prepared
    as_served = backend_of(settings.llm).trainable_as_served(settings.llm)
    if model_id is not None and as_served is not None:  # weights served as they are (vLLM's folder)
        found[model_id] = as_served
    found.update({name: path.expanduser() for name, path in settings.training.base_models.items()})
    return found


def training_store(database: Database) -> TrainingJobStore:
    from mindfu_adapters.store.training import SqlTrainingJobStore

    return SqlTrainingJobStore(database)


def training_runner(settings: Settings, served_model_id: str | None) -> TrainingRunner:
    from mindfu_adapters.export.awq import AwqExport
    from mindfu_adapters.jobs.runner import SubprocessTrainingRunner

    config = settings.training
    return SubprocessTrainingRunner(
        settings.training_dir(),
        base_models=base_models(settings, served_model_id),
        tracking_uri=settings.tracking_uri(),
        artifact_root=settings.data_dir.expanduser() / "mlflow-artifacts",
        experiment=config.experiment,
        cancel_grace_s=config.cancel_grace_s,
        merge=config.merge,
        merge_dtype=config.merge_dtype,
        gguf=config.export_gguf,
        tools=settings.data_dir.expanduser() / "tools",
        awq=AwqExport(python=config.awq_python or sys.executable, device=config.awq_device)
        if config.export_awq
        else None,
        lora_gguf=config.export_lora_gguf,
    )


async def training_resource(
    settings: Settings,
    store: TrainingJobStore,
    conversations: ConversationService,
    log: CompletionLog | None,
    chat: ChatService,
    build_engine: Callable[[AnyLlmSettings], LLMEngine],
    served_model_id: str | None,
) -> AsyncIterator[TrainingService | None]:
    """The fine-tuning service and its scheduler (``None`` with training off); stopped at shutdown."""
    if not settings.training.enabled:
        yield None
        return
    from mindfu_adapters.jobs.serving import Publisher
    from mindfu_adapters.store.blobs import LocalBlobStore

    def build(gguf: Path, name: str) -> LLMEngine:
        # the served model's own settings where llama.cpp takes them (sampling, window, threads...)
        carried = {
            key: value
            for key, value in settings.llm.model_dump().items()
            if key in LlamaCppSettings.model_fields and key != "backend"
        }
        update = {"model_path": gguf, "model_id": name, "slots": 1, "lora_adapters": {}, "aliases": []}
        return build_engine(LlamaCppSettings(**(carried | update)))

    publisher = Publisher(chat, build)
    service = TrainingService(
        store,
        training_runner(settings, served_model_id),
        LocalBlobStore(settings.data_dir.expanduser() / "files"),
        conversations.export,
        max_file_bytes=settings.training.max_file_bytes,
        # a dataset of the logged conversations includes every chat already answered
        catch_up=(lambda: log.flush(settings.conversations.shutdown_flush_s)) if log is not None else None,
        publish=publisher,
    )
    await service.start()
    try:
        yield service
    finally:
        await service.aclose()
        await publisher.aclose()


def training_reader(
    settings: Settings,
    store: TrainingJobStore,
    conversations: ConversationService,
    served_model_id: str | None,
) -> TrainingService | None:
    """The fine-tuning service without its scheduler (``None`` with training off): files and jobs are read,
    created and cancelled, and whichever scheduler shares the database runs them. For one-off commands;
    no engine is loaded."""
    if not settings.training.enabled:
        return None
    from mindfu_adapters.store.blobs import LocalBlobStore

    return TrainingService(
        store,
        training_runner(settings, served_model_id),
        LocalBlobStore(settings.data_dir.expanduser() / "files"),
        conversations.export,
        max_file_bytes=settings.training.max_file_bytes,
    )
