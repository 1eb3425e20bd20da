"""Domain objects with every field set to a value other than its default, for the round-trip tests of the
gRPC mapping and of the HTTP wire: a field added to a domain type and forgotten by a wire fails them."""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mindfu_core.domain.conversations import ConversationFilter, ConversationSummary, LoggedCompletion
from mindfu_core.domain.documents import Chunk
from mindfu_core.domain.training import TrainingFile, TrainingJob

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
T = typing.TypeVar("T")
FLIP_BOOLS: contextvars.ContextVar[bool] = contextvars.ContextVar("flip_bools", default=False)

#: domain fields that stay in the server (no wire carries them), and why
DOMAIN_ONLY: dict[tuple[type, str], str] = {
    (ConversationSummary, "api_key_id"): "the key's fingerprint is not shown to clients (HTTP neither)",
    (ConversationFilter, "api_key_id"): "filtering by a key's fingerprint is the server's own",
    (LoggedCompletion, "api_key_id"): "the key's fingerprint is not shown to clients (HTTP neither)",
    (ConversationSummary, "tenant"): "the server knows the caller's tenant from its key, and keeps to it",
    (ConversationFilter, "tenant"): "the server sets it to the caller's tenant, whatever a client sends",
    (TrainingFile, "tenant"): "the server keeps a caller to its tenant's files: it is never sent",
    (TrainingJob, "tenant"): "the server keeps a caller to its tenant's jobs: it is never sent",
    (Chunk, "vector"): "the embedding is the index's, not a search result's",
    (Chunk, "sparse"): "the BM25 terms are the index's, not a search result's",
}


def _value(hint: Any, default: Any, name: str, owner: type) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None) and getattr(a, "__name__", "") != "Unset"]
        return _value(options[0], None, name, owner)
    if origin is typing.Literal:
        return next((a for a in args if a != default), args[0])
    if origin is tuple:
        return (_value(args[0], None, name, owner),)
    if origin in (dict, Mapping, typing.Mapping) or hint in (dict, Mapping):
        kind = args[1] if args else Any
        if kind is Any:
            return {"key": "value", "number": 3, "nested": {"list": [1, 2]}}
        kinds = typing.get_args(kind) or (kind,)
        return {f"key{i}": _value(k, None, name, owner) for i, k in enumerate(kinds)}
    if origin is list:
        return [_value(args[0], None, name, owner)]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        members = list(hint)
        return next((m for m in reversed(members) if m != default), members[0])
    if hint is bool:
        # True is what proto3 tells apart from unset; the other pass flips every default, so that a reader
        # that forgets a field whose default is True is caught too
        return not default if FLIP_BOOLS.get() and isinstance(default, bool) else True
    if hint is int:
        return (default or 0) + 3
    if hint is float:
        return (default or 0.0) + 0.25
    if hint is str:
        return f"{owner.__name__.lower()}-{name}"
    if hint is datetime:
        return WHEN
    if hint is Path:
        return Path(f"/data/{name}")
    if hint is Any:
        return {"key": "value"}
    if dataclasses.is_dataclass(hint):
        return filled(hint)
    raise TypeError(f"no value for {owner.__name__}.{name}: {hint!r}")


def filled(cls: type[T], **given: Any) -> T:
    """``cls`` with every field set to a value other than its default (``given``: where the domain needs
    a particular one)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            values[f.name] = given[f.name]
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if (cls, f.name) in DOMAIN_ONLY:
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            values[f.name] = default
            continue
        values[f.name] = _value(hints[f.name], default, f.name, cls)
    return cls(**values)
