"""OpenAI Responses API request models (unknown fields tolerated) and their translation to core requests.

Function tools (alone or grouped in a ``namespace`` tool), text input and the items a client sends back
(messages, function calls and their outputs) are served. A namespaced function reaches the model as
``namespace.name`` (client names cannot hold a dot) and its calls go back with ``namespace`` and ``name``
apart. OpenAI's hosted tools (web search, file search, code interpreter...) run on OpenAI's side, which
this server has not: they are not offered to the model (Codex sends ``web_search`` on every turn), and
forcing one with ``tool_choice`` is refused. Client-side tools other than functions (``custom``,
``local_shell``...) and image or file inputs are refused with a message naming them; reasoning items are
skipped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mindfu_core.domain.chat import (
    ChatRequest,
    Message,
    ResponseFormat,
    ResponseFormatType,
    Role,
    SamplingParams,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from mindfu_core.errors import InvalidRequest

TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})
SKIPPED_ITEMS = frozenset({"reasoning"})
# tools OpenAI runs itself: a request may list them, the model here is not offered them
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_2025_08_26",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "image_generation",
        "mcp",
        "tool_search",
    }
)
NAMESPACE_SEPARATOR = "."


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Part(_Open):
    type: str
    text: str | None = None
    refusal: str | None = None


class Item(_Open):
    """An input item: a message (``type`` message, or just a role), a function call or its output."""

    type: str | None = None
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[Part] | None = None
    # function_call / function_call_output
    call_id: str | None = None
    name: str | None = None
    namespace: str | None = None
    arguments: str | None = None
    output: str | list[Part] | None = None


class ToolIn(_Open):
    type: str
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")] | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    tools: list[ToolIn] | None = None  # a namespace's functions


class NamedTool(_Open):
    type: Literal["function"]
    name: str


class FormatIn(_Open):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextIn(_Open):
    format: FormatIn | None = None


class ResponsesIn(_Open):
    """``POST /v1/responses``."""

    model: str
    input: str | list[Item]
    instructions: str | None = None
    tools: list[ToolIn] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedTool | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    stream: bool | None = False
    store: bool | None = True
    previous_response_id: str | None = None
    text: TextIn | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None

    def to_core(self) -> ChatRequest:
        messages: list[Message] = []
        if self.instructions:
            messages.append(Message(role=Role.SYSTEM, content=self.instructions))
        if isinstance(self.input, str):
            messages.append(Message(role=Role.USER, content=self.input))
        else:
            for position, item in enumerate(self.input):
                _add_item(messages, item, f"input[{position}]")
        tools = _tools(self.tools or [])
        return ChatRequest(
            model=self.model,
            messages=tuple(messages),
            tools=tools,
            tool_choice=_tool_choice(self.tool_choice, bool(tools)),
            response_format=_format(self.text),
            sampling=SamplingParams(
                max_tokens=self.max_output_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
            ),
        )


def _text(content: str | list[Part] | None, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for i, part in enumerate(content):
        if part.type not in TEXT_PARTS:
            raise InvalidRequest(
                f"{part.type} content is not supported by this server (the served model reads text only)",
                param=f"{param}[{i}]",
            )
        texts.append(part.text or part.refusal or "")
    return "".join(texts)


def _add_item(messages: list[Message], item: Item, param: str) -> None:
    kind = item.type or "message"
    if kind in SKIPPED_ITEMS:
        return
    if kind == "message":
        if item.role is None:
            raise InvalidRequest("a message item needs a role", param=f"{param}.role")
        role = Role.SYSTEM if item.role == "developer" else Role(item.role)
        messages.append(Message(role=role, content=_text(item.content, f"{param}.content")))
    elif kind == "function_call":
        if not item.call_id or not item.name:
            raise InvalidRequest("a function_call item needs call_id and name", param=param)
        name = f"{item.namespace}{NAMESPACE_SEPARATOR}{item.name}" if item.namespace else item.name
        call = ToolCall(id=item.call_id, name=name, arguments=item.arguments or "{}")
        previous = messages[-1] if messages else None
        if previous is not None and previous.role is Role.ASSISTANT:
            # an answer's text and its (parallel) calls arrive as consecutive items: one assistant turn
            messages[-1] = Message(
                role=Role.ASSISTANT, content=previous.content, tool_calls=(*previous.tool_calls, call)
            )
        else:
            messages.append(Message(role=Role.ASSISTANT, tool_calls=(call,)))
    elif kind == "function_call_output":
        if not item.call_id:
            raise InvalidRequest("a function_call_output item needs call_id", param=param)
        output = item.output if isinstance(item.output, str) else _text(item.output, f"{param}.output")
        messages.append(Message(role=Role.TOOL, tool_call_id=item.call_id, content=output))
    else:
        raise InvalidRequest(f"input items of type {kind!r} are not supported by this server", param=param)


def _tools(tools: list[ToolIn]) -> tuple[ToolSpec, ...]:
    """The functions offered to the model: each function tool, each namespace's functions as
    ``namespace.name``; hosted tools are left out."""
    specs: list[ToolSpec] = []
    for position, tool in enumerate(tools):
        param = f"tools[{position}]"
        if tool.type == "namespace":
            if not tool.name:
                raise InvalidRequest("a namespace tool needs a name", param=f"{param}.name")
            for inner, function in enumerate(tool.tools or ()):
                specs.append(_function(function, f"{param}.tools[{inner}]", prefix=tool.name))
        elif tool.type not in HOSTED_TOOLS:
            specs.append(_function(tool, param))
    return tuple(specs)


def _function(tool: ToolIn, param: str, prefix: str | None = None) -> ToolSpec:
    if tool.type != "function":
        raise InvalidRequest(
            f"{tool.type} tools are not supported by this server; define function tools", param=param
        )
    if not tool.name:
        raise InvalidRequest("a function tool needs a name", param=f"{param}.name")
    name = f"{prefix}{NAMESPACE_SEPARATOR}{tool.name}" if prefix else tool.name
    return ToolSpec(name=name, description=tool.description or "", parameters=tool.parameters or {})


def _tool_choice(choice: str | NamedTool | None, has_tools: bool) -> ToolChoice:
    if isinstance(choice, NamedTool):
        return ToolChoice(mode=ToolChoiceMode.FUNCTION, name=choice.name)
    if choice is None:
        return ToolChoice(mode=ToolChoiceMode.AUTO if has_tools else ToolChoiceMode.NONE)
    return ToolChoice(mode=ToolChoiceMode(choice))


def _format(text: TextIn | None) -> ResponseFormat:
    fmt = text.format if text is not None else None
    if fmt is None or fmt.type == "text":
        return ResponseFormat()
    if fmt.type == "json_object":
        return ResponseFormat(type=ResponseFormatType.JSON_OBJECT)
    if not fmt.schema_:
        raise InvalidRequest("text.format json_schema needs a schema", param="text.format.schema")
    return ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema=fmt.schema_, name=fmt.name)
