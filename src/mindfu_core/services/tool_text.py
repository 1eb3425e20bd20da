"""How MindFu shows tools to a model whose chat template knows none: the widely trained Hermes format.

The model answers a call as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` and sees results as
``<tool_response>`` turns. The engine prompts with it and the trainer trains with it, so a fine-tuned model
learns exactly the text it is served with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mindfu_core.domain.chat import Message, Role, ToolChoice, ToolChoiceMode, ToolSpec

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
