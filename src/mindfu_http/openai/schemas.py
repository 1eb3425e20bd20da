"""OpenAI request models (unknown fields tolerated) and their translation to core requests."""

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
    TextRequest,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from mindfu_core.domain.documents import Filter
from mindfu_core.domain.retrieval import UNSET, RetrievalOverrides
from mindfu_core.errors import InvalidRequest


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    type: str
    text: str | None = None


class FunctionCallIn(_Open):
    name: str
    arguments: str = "{}"


class ToolCallIn(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class FunctionDef(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    strict: bool | None = None


class ToolIn(_Open):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Open):
    name: str


class NamedToolChoice(_Open):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaSpec(_Open):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class FilterIn(BaseModel):
    """Restricts retrieval to some documents and/or chunks whose metadata equal the given values."""

    model_config = ConfigDict(extra="forbid")
    document_ids: list[str] = Field(default_factory=list)
    metadata: dict[str, str | int | bool] = Field(default_factory=dict)

    def to_core(self) -> Filter | None:
        if not self.document_ids and not self.metadata:
            return None
        return Filter(document_ids=tuple(self.document_ids), metadata=dict(self.metadata))


class RagIn(BaseModel):
    """``"mindfu": {"rag": {...}}``: retrieval for this request; unset fields keep the server's defaults."""

    model_config = ConfigDict(extra="forbid")
    top_k: int | None = None
    min_score: float | None = None
    collection: str | None = None
    hybrid: bool | None = None
    filter: FilterIn | None = None

    def overrides(self) -> RetrievalOverrides:
        """The fields the client set (``min_score: null`` means no threshold)."""
        given = self.model_fields_set

        def field(name: str) -> Any:
            value = getattr(self, name)
            return value if name in given and (name == "min_score" or value is not None) else UNSET

        return RetrievalOverrides(
            enabled=True,
            top_k=field("top_k"),
            min_score=field("min_score"),
            collection=field("collection"),
            hybrid=field("hybrid"),
            where=self.filter.to_core() if self.filter is not None else UNSET,
        )


class MindfuIn(BaseModel):
    """MindFu's namespaced request extension: ``"mindfu": {"rag": false | true | {...},
    "conversation_id": "...", "log": false, "previous_completion_id": "..."}``."""

    model_config = ConfigDict(extra="forbid")
    rag: bool | RagIn | None = None
    conversation_id: str | None = None
    log: bool = Field(default=True, description="false: this completion is not logged")
    previous_completion_id: str | None = Field(
        default=None, description="continue after this logged completion: its transcript comes first"
    )

    def retrieval_overrides(self) -> RetrievalOverrides | None:
        if self.rag is None:
            return None
        if isinstance(self.rag, bool):
            return RetrievalOverrides(enabled=self.rag)
        return self.rag.overrides()


class StreamOptions(_Open):
    include_usage: bool = False


class _Sampling(_Open):
    model: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: str | None = None
    # llama.cpp / vLLM sampling extensions
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    repetition_penalty: float | None = None

    def sampling(self, *, max_tokens: int | None, logprobs: bool, top_logprobs: int) -> SamplingParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=stop,
            seed=self.seed,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            top_k=self.top_k,
            min_p=self.min_p,
            repeat_penalty=self.repeat_penalty
            if self.repeat_penalty is not None
            else self.repetition_penalty,
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionIn(_Sampling):
    messages: list[ChatMessageIn]
    max_completion_tokens: int | None = None
    tools: list[ToolIn] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormatIn | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None
    mindfu: MindfuIn | None = None

    def to_core(self) -> ChatRequest:
        max_tokens = self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens
        return ChatRequest(
            model=self.model,
            messages=tuple(_message(m, i) for i, m in enumerate(self.messages)),
            sampling=self.sampling(
                max_tokens=max_tokens, logprobs=bool(self.logprobs), top_logprobs=self.top_logprobs or 0
            ),
            tools=tuple(
                ToolSpec(
                    name=t.function.name, description=t.function.description, parameters=t.function.parameters
                )
                for t in self.tools or ()
            ),
            tool_choice=_tool_choice(self.tool_choice, bool(self.tools)),
            response_format=_response_format(self.response_format),
            n=1 if self.n is None else self.n,
        )


class CompletionIn(_Sampling):
    prompt: str | list[str]
    echo: bool | None = False
    logprobs: int | None = None
    suffix: str | None = None
    best_of: int | None = None

    def to_core(self) -> TextRequest:
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1:
                raise InvalidRequest("only one prompt per request is supported", param="prompt")
            prompt = self.prompt[0]
        else:
            prompt = self.prompt
        if self.suffix:
            raise InvalidRequest("suffix (fill-in-the-middle) is not supported", param="suffix")
        if self.best_of not in (None, 1):
            raise InvalidRequest("best_of is not supported", param="best_of")
        return TextRequest(
            model=self.model,
            prompt=prompt,
            sampling=self.sampling(
                max_tokens=16 if self.max_tokens is None else self.max_tokens,
                logprobs=self.logprobs is not None,
                top_logprobs=self.logprobs or 0,
            ),
            echo=bool(self.echo),
            n=1 if self.n is None else self.n,
        )


def _text(content: str | list[ContentPart] | None, position: int) -> str | None:
    if content is None or isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise InvalidRequest(
                f"content parts of type {part.type!r} are not supported by this model; send text",
                param=f"messages[{position}].content",
            )
        texts.append(part.text)
    return "".join(texts)


def _message(message: ChatMessageIn, position: int) -> Message:
    role = Role.SYSTEM if message.role == "developer" else Role(message.role)
    return Message(
        role=role,
        content=_text(message.content, position),
        name=message.name,
        tool_call_id=message.tool_call_id,
        tool_calls=tuple(
            ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in message.tool_calls or ()
        ),
    )


def _tool_choice(choice: str | NamedToolChoice | None, has_tools: bool) -> ToolChoice:
    if isinstance(choice, NamedToolChoice):
        return ToolChoice(mode=ToolChoiceMode.FUNCTION, name=choice.function.name)
    if choice is None:
        return ToolChoice(mode=ToolChoiceMode.AUTO if has_tools else ToolChoiceMode.NONE)
    return ToolChoice(mode=ToolChoiceMode(choice))


def _response_format(fmt: ResponseFormatIn | None) -> ResponseFormat:
    if fmt is None or fmt.type == "text":
        return ResponseFormat()
    if fmt.type == "json_object":
        return ResponseFormat(type=ResponseFormatType.JSON_OBJECT)
    spec = fmt.json_schema
    if spec is None or not spec.schema_:
        raise InvalidRequest("response_format json_schema needs json_schema.schema", param="response_format")
    return ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema=spec.schema_, name=spec.name)
