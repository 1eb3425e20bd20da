"""Shared conversions: JSON text fields, timestamps, optional scalars."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from mindfu_core.errors import InvalidRequest


def json_object(text: str, param: str) -> dict[str, Any]:
    """A JSON object given as text (empty: ``{}``); ``InvalidRequest`` naming ``param`` otherwise."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"{param} is not valid JSON: {exc}", param=param) from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"{param} must be a JSON object", param=param)
    return value


def json_text(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value), ensure_ascii=False, separators=(",", ":")) if value else ""


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def optional(message: Any, name: str) -> Any:
    """The field's value when it is set (``optional`` or message fields), else ``None``."""
    return getattr(message, name) if message.HasField(name) else None
