"""Anthropic Messages API request models (unknown fields tolerated) and their translation to core requests.

Text, tool_use and tool_result blocks are what a text model can serve; thinking blocks that a client sends
back in its history are accepted and skipped, and image, document and server-tool blocks are refused with a
message naming them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mindfu_core.domain.chat import (
    ChatRequest,
    Message,
    Role,
    SamplingParams,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from mindfu_core.errors import InvalidRequest

#: Blocks a client may send back from an earlier answer that carry nothing for the model to read.
SKIPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
#: Blocks that need a capability the served text models lack.
UNSUPPORTED_BLOCKS = {
    "image": "image content blocks (the served model reads text only)",
    "document": "document content blocks (ingest documents through /v1/documents for retrieval instead)",
    "search_result": "search_result content blocks",
    "server_tool_use": "server tool blocks (server_tool_use)",
    "web_search_tool_result": "server tool blocks (web_search_tool_result)",
    "container_upload": "container_upload blocks",
}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Block(_Open):
    """One content block; which fields matter depends on ``type``."""

    type: str
    text: str | None = None
    # tool_use
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    # tool_result
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    is_error: bool | None = None


class MessageIn(_Open):
    # "system" is not in Anthropic's API, but Claude Code sends such turns (reminders) in messages
    role: Literal["user", "assistant", "system"]
    content: str | list[Block]


class ToolIn(_Open):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    description: str = ""
    input_schema: dict[str, Any] | None = None
    type: str | None = None


class ToolChoiceIn(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class MetadataIn(_Open):
    user_id: str | None = None


class _Prompt(_Open):
    """What count_tokens and messages share."""

    model: str
    messages: list[MessageIn]
    system: str | list[Block] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoiceIn | None = None
    thinking: dict[str, Any] | None = None  # accepted and ignored: the served models do not think aloud

    def core_messages(self) -> tuple[Message, ...]:
        out: list[Message] = []
        system = _system_text(self.system)
        if system:
            out.append(Message(role=Role.SYSTEM, content=system))
        for position, message in enumerate(self.messages):
            out.extend(_messages(message, position))
        return tuple(out)

    def core_tools(self) -> tuple[ToolSpec, ...]:
        return tuple(_tool(tool, i) for i, tool in enumerate(self.tools or ()))

    def core_tool_choice(self) -> ToolChoice:
        choice = self.tool_choice
        if choice is None or choice.type == "auto":
            return ToolChoice(mode=ToolChoiceMode.AUTO if self.tools else ToolChoiceMode.NONE)
        if choice.type == "none":
            return ToolChoice(mode=ToolChoiceMode.NONE)
        if choice.type == "any":
            return ToolChoice(mode=ToolChoiceMode.REQUIRED)
        if not choice.name:
            raise InvalidRequest("tool_choice of type 'tool' needs a name", param="tool_choice.name")
        return ToolChoice(mode=ToolChoiceMode.FUNCTION, name=choice.name)

    def to_core(self, model: str) -> ChatRequest:
        """The prompt alone (for counting): sampling stays at its defaults."""
        return ChatRequest(
            model=model,
            messages=self.core_messages(),
            tools=self.core_tools(),
            tool_choice=self.core_tool_choice(),
        )


class CountTokensIn(_Prompt):
    """``POST /v1/messages/count_tokens``."""


class MessagesIn(_Prompt):
    """``POST /v1/messages``."""

    max_tokens: Annotated[int, Field(ge=1)]
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    stream: bool | None = False
    metadata: MetadataIn | None = None

    def to_core(self, model: str) -> ChatRequest:
        prompt = super().to_core(model)
        sampling = SamplingParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop=tuple(self.stop_sequences or ()),
        )
        return ChatRequest(
            model=prompt.model,
            messages=prompt.messages,
            tools=prompt.tools,
            tool_choice=prompt.tool_choice,
            sampling=sampling,
        )

    @property
    def user(self) -> str | None:
        return self.metadata.user_id if self.metadata is not None else None


def _refuse(block: Block, param: str) -> None:
    feature = UNSUPPORTED_BLOCKS.get(block.type, f"content blocks of type {block.type!r}")
    raise InvalidRequest(f"{feature} are not supported by this server", param=param)


def _system_text(system: str | list[Block] | None) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    parts = []
    for i, block in enumerate(system):
        if block.type != "text":
            _refuse(block, f"system[{i}]")
        parts.append(block.text or "")
    return "\n\n".join(parts)


def _result_text(block: Block, param: str) -> str:
    content = block.content
    if content is None or isinstance(content, str):
        text = content or ""
    else:
        texts = []
        for i, part in enumerate(content):
            if part.type != "text":
                _refuse(part, f"{param}.content[{i}]")
            texts.append(part.text or "")
        text = "\n".join(texts)
    return f"Error: {text}" if block.is_error else text


def _messages(message: MessageIn, position: int) -> list[Message]:
    param = f"messages[{position}].content"
    if message.role == "system":
        text = message.content if isinstance(message.content, str) else _system_text(message.content)
        return [Message(role=Role.SYSTEM, content=text)] if text else []
    if isinstance(message.content, str):
        return [Message(role=Role(message.role), content=message.content)]
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for i, block in enumerate(message.content):
        where = f"{param}[{i}]"
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type in SKIPPED_BLOCKS:
            continue
        elif block.type == "tool_use" and message.role == "assistant":
            if not block.id or not block.name:
                raise InvalidRequest("a tool_use block needs an id and a name", param=where)
            calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input or {})))
        elif block.type == "tool_result" and message.role == "user":
            if not block.tool_use_id:
                raise InvalidRequest("a tool_result block needs a tool_use_id", param=where)
            results.append(
                Message(role=Role.TOOL, tool_call_id=block.tool_use_id, content=_result_text(block, where))
            )
        elif block.type in ("tool_use", "tool_result"):
            raise InvalidRequest(
                f"{block.type} blocks belong in {'assistant' if block.type == 'tool_use' else 'user'} "
                "messages",
                param=where,
            )
        else:
            _refuse(block, where)
    text = "".join(texts)
    if message.role == "assistant":
        if not text and not calls:
            return []  # a turn that only thought: nothing for the model to read
        return [Message(role=Role.ASSISTANT, content=text or None, tool_calls=tuple(calls))]
    if text or not results:
        results.append(Message(role=Role.USER, content=text))
    return results


def _tool(tool: ToolIn, position: int) -> ToolSpec:
    if tool.type not in (None, "custom") or tool.input_schema is None:
        kind = tool.type or "without input_schema"
        raise InvalidRequest(
            f"tool {tool.name!r} ({kind}) is not supported: this server runs client tools only; define it "
            "with an input_schema",
            param=f"tools[{position}]",
        )
    return ToolSpec(name=tool.name, description=tool.description, parameters=tool.input_schema)
