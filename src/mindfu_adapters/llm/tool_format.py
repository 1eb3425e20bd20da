"""Tool calling for models whose chat template knows no tools: the prompt block and the output parser.

The format is the widely trained Hermes one: the model answers a call as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` and sees results as ``<tool_response>``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from mindfu_core.domain.chat import Message, Role, ToolCall, ToolChoice, ToolChoiceMode, ToolSpec

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"


def tool_schema(tool: ToolSpec) -> dict[str, Any]:
    """The OpenAI ``tools`` entry for ``tool`` (what chat templates and prompts show the model)."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters) or {"type": "object", "properties": {}},
        },
    }


def tools_system_block(tools: Sequence[ToolSpec], choice: ToolChoice) -> str:
    """Instructions that teach a tool-unaware template the available functions and the call format."""
    listing = "\n".join(json.dumps(tool_schema(tool), ensure_ascii=False) for tool in tools)
    if choice.mode is ToolChoiceMode.FUNCTION:
        must = f"You must call the function {choice.name!r}."
    elif choice.mode is ToolChoiceMode.REQUIRED:
        must = "You must call one of these functions."
    else:
        must = "Call a function only when it helps answer; otherwise answer directly."
    return (
        "You have access to the following functions:\n<tools>\n"
        f"{listing}\n</tools>\n{must}\n"
        f"To call a function, reply with only {CALL_OPEN}"
        '{"name": <function-name>, "arguments": <arguments-object>}'
        f"{CALL_CLOSE}. Results come back inside <tool_response></tool_response>."
    )


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


def template_messages(messages: Sequence[Message], *, native_tools: bool) -> list[dict[str, Any]]:
    """Messages as the dicts chat templates expect; tool turns rewritten when the template lacks tools."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.content or ""
        if message.role is Role.ASSISTANT and message.tool_calls:
            if native_tools:
                out.append(
                    {
                        "role": "assistant",
                        "content": content,
                        "tool_calls": [
                            {
                                "id": call.id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": json.loads(call.arguments)},
                            }
                            for call in message.tool_calls
                        ],
                    }
                )
            else:
                rendered = "".join(
                    f'{CALL_OPEN}{{"name": {json.dumps(c.name)}, "arguments": {c.arguments}}}{CALL_CLOSE}'
                    for c in message.tool_calls
                )
                out.append({"role": "assistant", "content": content + rendered})
        elif message.role is Role.TOOL and not native_tools:
            out.append({"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"})
        else:
            entry: dict[str, Any] = {"role": message.role.value, "content": content}
            if message.tool_call_id:
                entry["tool_call_id"] = message.tool_call_id
            if message.name:
                entry["name"] = message.name
            out.append(entry)
    return out
