"""Conversations as OpenAI's chat format writes them: the messages of a fine-tuning example (the format the
export, the dataset builder and OpenAI-compatible engines share)."""

from __future__ import annotations

from typing import Any

from mindfu_core.domain.chat import Message
from mindfu_core.domain.conversations import Conversation


def finetuning_example(conversation: Conversation) -> dict[str, Any]:
    """One line of OpenAI's chat fine-tuning JSONL: ``{"messages": [...]}`` (tool calls kept, and the
    tools offered in the latest completion as ``"tools"``)."""
    example: dict[str, Any] = {"messages": [openai_message(m) for m in conversation.messages]}
    if conversation.tools:
        example["tools"] = [dict(tool) for tool in conversation.tools]
    return example


def openai_message(message: Message) -> dict[str, Any]:
    """A message in the OpenAI chat format."""
    out: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


__all__ = ["finetuning_example", "openai_message"]
