"""Chat examples as the text a model is trained on: its own chat template, with tools either native (the
template knows them) or in the Hermes text format MindFu serves tool-unaware models with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mindfu_core.domain.chat import Role, ToolSpec
from mindfu_core.domain.chat import ToolChoice as _ToolChoice
from mindfu_core.domain.training import ChatExample
from mindfu_core.services.tool_text import template_messages, tools_system_block


def knows_tools(template: str | None) -> bool:
    """Whether a chat template renders tool calls itself."""
    return bool(template) and "tool_calls" in (template or "")


def _specs(tools: Sequence[Any]) -> list[ToolSpec]:
    specs = []
    for tool in tools:
        function = tool.get("function", {}) if isinstance(tool, dict) else {}
        specs.append(
            ToolSpec(
                name=str(function.get("name", "")),
                description=str(function.get("description", "")),
                parameters=dict(function.get("parameters") or {}),
            )
        )
    return specs


def render(example: ChatExample, tokenizer: Any) -> str:
    """The example as one training text, through ``tokenizer``'s chat template."""
    native = knows_tools(getattr(tokenizer, "chat_template", None))
    messages = template_messages(example.messages, native_tools=native)
    tools: list[dict[str, Any]] | None = [dict(t) for t in example.tools] or None
    if tools and not native:
        block = tools_system_block(_specs(tools), _ToolChoice())
        if messages and messages[0]["role"] == Role.SYSTEM.value:
            messages[0] = {**messages[0], "content": f"{messages[0]['content']}\n\n{block}"}
        else:
            messages.insert(0, {"role": "system", "content": block})
        tools = None
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    return str(text)


def to_records(examples: Sequence[ChatExample], tokenizer: Any) -> list[dict[str, str]]:
    return [{"text": render(example, tokenizer)} for example in examples]
