"""Fine-tuning data in OpenAI's chat format: one ``{"messages": [...], "tools": [...]}`` object per line.

``read_chat_jsonl`` is the loader the training pipeline reads with, whether the lines come from an uploaded
file or from ``mindfu conversations export``: every line is checked and a bad one is named by its number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from mindfu_core.domain.chat import Message, Role, ToolCall
from mindfu_core.domain.training import ChatExample
from mindfu_core.errors import InvalidRequest

_ROLES = {"system": Role.SYSTEM, "developer": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}


def read_chat_jsonl(lines: Iterable[str | bytes]) -> Iterator[ChatExample]:
    """Parse lines lazily (constant memory); blank lines are skipped, anything else invalid raises
    ``InvalidRequest`` naming the line."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            raise InvalidRequest(f"line {number}: not JSON ({error})", param="file") from None
        try:
            yield parse_chat_example(value)
        except InvalidRequest as error:
            raise InvalidRequest(f"line {number}: {error.message}", param="file") from None


def parse_chat_example(value: Any) -> ChatExample:
    if not isinstance(value, dict) or not isinstance(value.get("messages"), list) or not value["messages"]:
        raise InvalidRequest('expected an object with a non-empty "messages" list')
    messages = tuple(_message(m, i) for i, m in enumerate(value["messages"]))
    if not any(m.role is Role.ASSISTANT for m in messages):
        raise InvalidRequest("an example needs at least one assistant message to learn from")
    calls = {c.id for m in messages for c in m.tool_calls}
    for message in messages:
        if message.role is Role.TOOL and message.tool_call_id not in calls:
            raise InvalidRequest(f"a tool message answers an unknown tool call {message.tool_call_id!r}")
    tools = value.get("tools") or []
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
        for t in tools
    ):
        raise InvalidRequest('"tools" must be a list of {"type": "function", "function": {"name": ...}}')
    return ChatExample(messages=messages, tools=tuple(tools))


def _message(value: Any, index: int) -> Message:
    where = f"messages[{index}]"
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} is not an object")
    role_name = value.get("role")
    if role_name == "tool":
        role = Role.TOOL
    elif role_name in _ROLES:
        role = _ROLES[role_name]
    else:
        raise InvalidRequest(f"{where} has an unknown role {role_name!r}")
    content = value.get("content")
    if isinstance(content, list):  # content parts: the text ones
        content = "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    if content is not None and not isinstance(content, str):
        raise InvalidRequest(f"{where}.content must be a string")
    calls = tuple(
        _tool_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(value.get("tool_calls") or ())
    )
    if calls and role is not Role.ASSISTANT:
        raise InvalidRequest(f"{where}: only assistant messages make tool calls")
    if content is None and not calls:
        raise InvalidRequest(f"{where} has neither content nor tool calls")
    tool_call_id = value.get("tool_call_id")
    if role is Role.TOOL and not isinstance(tool_call_id, str):
        raise InvalidRequest(f"{where}: a tool message needs its tool_call_id")
    return Message(
        role=role, content=content, tool_calls=calls, tool_call_id=tool_call_id, name=value.get("name")
    )


def _tool_call(value: Any, where: str) -> ToolCall:
    function = value.get("function") if isinstance(value, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"{where} needs a function with a name")
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        raise InvalidRequest(f"{where}.function.arguments must be a JSON string")
    try:
        json.loads(arguments)
    except ValueError:
        raise InvalidRequest(f"{where}.function.arguments is not valid JSON") from None
    return ToolCall(id=str(value.get("id") or ""), name=function["name"], arguments=arguments)
