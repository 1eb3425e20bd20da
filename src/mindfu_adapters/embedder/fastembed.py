"""FastEmbedEmbedder: all-MiniLM-L6-v2 on onnxruntime through fastembed, offline from a prepared folder."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mindfu_adapters.embedder.prepare import (
    DIMENSION,
    MODEL_ID,
    ONNX_FILE,
    PREPARE_COMMAND,
    TOKENIZER_FILES,
    default_model_dir,
    embed_in_batches,
    read_marker,
)
from mindfu_core.errors import ConfigurationError, EngineFailure, UpstreamUnavailable
from mindfu_core.ports.embedder import TextFit

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: fastembed already lists the hub's all-MiniLM-L6-v2 (and refuses to register a name twice); the local
#: export is registered under its own name, so its pooling and file layout are ours, not the hub entry's.
_LOCAL_PREFIX = "mindfu-local/"
_registry_lock = threading.Lock()


class FastEmbedEmbedder:
    """An ``Embedder`` over fastembed's onnxruntime session; never reaches a model hub.

    ``model_dir`` is the folder written by ``mindfu models prepare`` (``None``: the default under the
    data directory). Texts are embedded ``batch_size`` at a time in a worker thread; ``threads`` is
    onnxruntime's intra-op thread count (``None``: one per core). The session is loaded on first use.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        model_name: str = DEFAULT_MODEL_NAME,
        *,
        batch_size: int = 64,
        threads: int | None = None,
        hub_cache: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError(f"embedding batch_size must be at least 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ConfigurationError(f"embedding threads must be at least 1, got {threads}")
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        self._whole: Any = None
        self._lock = threading.Lock()
        self._hub_cache = hub_cache
        if hub_cache is not None:  # a fastembed catalogue model that `mindfu models pull` downloaded
            self._name = model_name
            self._dir = hub_cache
            self._model_id = model_name.rsplit("/", 1)[-1]
            self._dimension = catalogue_dimension(model_name)
            return
        directory = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
        missing = [name for name in (ONNX_FILE, *TOKENIZER_FILES) if not (directory / name).is_file()]
        if missing:
            raise ConfigurationError(
                f"the embedding model is not prepared in {directory} (missing {', '.join(missing)}): "
                f"run `{PREPARE_COMMAND}`"
            )
        marker = read_marker(directory) or {}
        self._dir = directory
        self._name = model_name
        self._model_id = str(marker.get("model_id") or model_name.rsplit("/", 1)[-1] or MODEL_ID)
        self._dimension = int(marker.get("dimension") or _hidden_size(directory))

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return await embed_in_batches(texts, self._batch_size, self._embed_batch)

    async def count_tokens(self, texts: Sequence[str]) -> int:
        return await asyncio.to_thread(self._count, list(texts))

    def _count(self, texts: list[str]) -> int:
        with self._lock:
            tokenizer = self._loaded().model.tokenizer
            return sum(sum(encoding.attention_mask) for encoding in tokenizer.encode_batch(texts))

    async def measure(self, text: str) -> TextFit:
        return await asyncio.to_thread(self._measure, text)

    def _measure(self, text: str) -> TextFit:
        from tokenizers import Tokenizer

        with self._lock:
            tokenizer = self._loaded().model.tokenizer
            limit = int((tokenizer.truncation or {}).get("max_length") or 0)
            if self._whole is None:  # the same tokenizer, cutting nothing off
                self._whole = Tokenizer.from_str(tokenizer.to_str())
                self._whole.no_truncation()
                self._whole.no_padding()
            tokens = len(self._whole.encode(text).ids)
        return TextFit(tokens=tokens, limit=limit or tokens)

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        with self._lock:
            model = self._loaded()
            try:
                rows = list(model.embed(texts, batch_size=len(texts)))
            except Exception as exc:
                raise EngineFailure(f"embedding with {self._model_id} failed: {exc}") from exc
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), self._dimension)
        vectors: list[list[float]] = matrix.tolist()
        return vectors

    def _loaded(self) -> Any:
        if self._model is not None:
            return self._model
        if self._hub_cache is not None:
            return self._load_pulled(self._hub_cache)
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        name = _LOCAL_PREFIX + self._name
        with _registry_lock:
            known = {str(entry["model"]).lower() for entry in TextEmbedding.list_supported_models()}
            if name.lower() not in known:
                TextEmbedding.add_custom_model(
                    model=name,
                    pooling=PoolingType.MEAN,
                    normalization=True,
                    sources=ModelSource(hf=self._name),
                    dim=self._dimension,
                    model_file=ONNX_FILE,
                )
        try:
            self._model = TextEmbedding(
                name,
                threads=self._threads,
                specific_model_path=str(self._dir),
                cache_dir=str(self._dir),  # else fastembed makes an empty fastembed_cache in /tmp
                local_files_only=True,
            )
        except Exception as exc:
            raise ConfigurationError(
                f"cannot load the embedding model from {self._dir} ({exc}): run `{PREPARE_COMMAND} --force`"
            ) from exc
        return self._model

    def _load_pulled(self, cache: Path) -> Any:
        from fastembed import TextEmbedding

        try:
            self._model = TextEmbedding(
                self._name, cache_dir=str(cache), threads=self._threads, local_files_only=True
            )
        except Exception as exc:
            raise ConfigurationError(
                f"the embedding model {self._name} is not in {cache} ({exc}): "
                f"run `mindfu models pull {self._name}` first"
            ) from exc
        return self._model


def catalogue_dimension(model_name: str) -> int:
    """The vector size of a model in fastembed's catalogue; ``ConfigurationError`` for unknown names."""
    from fastembed import TextEmbedding

    catalogue = {str(m["model"]).lower(): m for m in TextEmbedding.list_supported_models()}
    entry = catalogue.get(model_name.lower())
    if entry is None:
        raise ConfigurationError(
            f"{model_name!r} is not a fastembed model (see `TextEmbedding.list_supported_models()`)"
        )
    return int(entry["dim"])


def pull_model(model_name: str, cache: Path) -> Path:
    """Download a fastembed catalogue model into ``cache`` — the only place MindFu reaches a model hub."""
    from fastembed import TextEmbedding

    catalogue_dimension(model_name)
    cache.mkdir(parents=True, exist_ok=True)
    try:
        TextEmbedding(model_name, cache_dir=str(cache))
    except Exception as exc:
        raise UpstreamUnavailable(f"could not download {model_name}: {exc}") from exc
    return cache


def _hidden_size(directory: Path) -> int:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        return int(config.get("hidden_size", DIMENSION))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"unreadable model config in {directory} ({exc}): run `{PREPARE_COMMAND}` again"
        ) from exc
