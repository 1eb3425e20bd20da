"""Tool calling for models whose chat template knows no tools: the output parser and the call grammar (the
prompt side, shared with the trainer, is ``mindfu_core.services.tool_text``).

The format is the widely trained Hermes one: the model answers a call as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` and sees results as ``<tool_response>``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from mindfu_core.domain.chat import ToolCall, ToolChoice, ToolChoiceMode, ToolSpec
from mindfu_core.services.tool_text import (
    CALL_CLOSE,
    CALL_OPEN,
    template_messages,
    tool_schema,
    tools_system_block,
)

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "call_grammar_schema",
    "could_become_call",
    "new_call_id",
    "parse_tool_calls",
    "template_messages",
    "tool_schema",
    "tools_system_block",
]


def call_grammar_schema(tools: Sequence[ToolSpec], choice: ToolChoice) -> dict[str, Any]:
    """The JSON schema a forced call must satisfy: one of the allowed functions with valid arguments."""
    allowed = [t for t in tools if choice.mode is not ToolChoiceMode.FUNCTION or t.name == choice.name]
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.name},
                "arguments": dict(tool.parameters) or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for tool in allowed
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def new_call_id() -> str:
    """An id in the shape OpenAI uses."""
    return f"call_{uuid.uuid4().hex[:24]}"


def _as_call(obj: Any, known: Mapping[str, ToolSpec]) -> ToolCall | None:
    if not isinstance(obj, dict) or obj.get("name") not in known:
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(id=new_call_id(), name=obj["name"], arguments=json.dumps(arguments, ensure_ascii=False))


def parse_tool_calls(text: str, tools: Sequence[ToolSpec]) -> tuple[ToolCall, ...] | None:
    """The calls ``text`` makes, or ``None`` when it is an ordinary answer (or a call that does not parse)."""
    known = {tool.name: tool for tool in tools}
    stripped = text.strip()
    bodies: list[str] = []
    if CALL_OPEN in stripped:
        for part in stripped.split(CALL_OPEN)[1:]:
            bodies.append(part.split(CALL_CLOSE, 1)[0].strip())
    elif stripped.startswith("{"):
        bodies.append(stripped)
    calls: list[ToolCall] = []
    for body in bodies:
        try:
            obj = json.loads(body)
        except json.JSONDecodeError:
            return None
        call = _as_call(obj, known)
        if call is None:
            return None
        calls.append(call)
    return tuple(calls) or None


def could_become_call(text: str) -> bool:
    """Whether streamed ``text`` so far may still turn into a tool call (so it must not be sent yet)."""
    head = text.lstrip()
    return head.startswith(CALL_OPEN) or CALL_OPEN.startswith(head) or head.startswith("{")
