"""Chat domain types: messages, tools, sampling parameters, streamed deltas, usage and results."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mindfu_core.domain.closing import aclose
from mindfu_core.domain.retrieval import RetrievalOptions, Source


class Role(enum.StrEnum):
    """Who speaks a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FinishReason(enum.StrEnum):
    """Why generation ended (the OpenAI values)."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A call the assistant asks the client to run; ``arguments`` is a JSON object as text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One turn of a conversation."""

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is its JSON schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


class ToolChoiceMode(enum.StrEnum):
    """How the model may use the tools it was given."""

    NONE = "none"
    AUTO = "auto"
    REQUIRED = "required"
    FUNCTION = "function"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolChoice:
    """``mode`` FUNCTION names the one tool that must be called in ``name``."""

    mode: ToolChoiceMode = ToolChoiceMode.AUTO
    name: str | None = None


class ResponseFormatType(enum.StrEnum):
    """Shape the output must take."""

    TEXT = "text"
    JSON_OBJECT = "json_object"
    JSON_SCHEMA = "json_schema"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFormat:
    """Constrained output: any JSON object, or JSON valid against ``schema``."""

    type: ResponseFormatType = ResponseFormatType.TEXT
    schema: Mapping[str, Any] | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SamplingParams:
    """Decoding parameters; ``None`` means the engine's default."""

    max_tokens: int | None = None
    temperature: float | None = None  # the model's default (1.0 unless its settings give another)
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: bool = False
    top_logprobs: int = 0
    # Beyond the OpenAI API, as llama.cpp and vLLM servers accept them; None means the engine's default.
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """A chat completion request, as the core sees it."""

    model: str
    messages: tuple[Message, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    response_format: ResponseFormat = field(default_factory=ResponseFormat)
    n: int = 1
    retrieval: RetrievalOptions | None = None  # None: the service's default


@dataclass(frozen=True, slots=True, kw_only=True)
class TextRequest:
    """A raw text completion request (the legacy ``/v1/completions``)."""

    model: str
    prompt: str
    sampling: SamplingParams = field(default_factory=SamplingParams)
    echo: bool = False
    n: int = 1


GenerationRequest = ChatRequest | TextRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts of one completion.

    ``cached_tokens`` are the prompt tokens the engine did not compute again: it reused them from an
    earlier request with the same prefix (they are counted in ``prompt_tokens`` too).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TopLogprob:
    """One alternative token and its log-probability."""

    token: str
    logprob: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenLogprob:
    """A sampled token, its log-probability and the best alternatives."""

    token: str
    logprob: float
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallDelta:
    """A piece of a tool call while it is generated: the first piece of a call names it (``id`` and
    ``name``), later ones add text to its ``arguments``. ``index`` numbers the choice's calls in order."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatDelta:
    """One streamed piece of a completion.

    Content arrives as text fragments. A tool call arrives either whole in ``tool_calls`` (with its
    complete arguments, once the engine has parsed it) or, where the engine can stream it, in pieces in
    ``tool_call_deltas``; calls of a choice are numbered in order across both forms. The last delta of each
    choice (``index``) carries its ``finish_reason``, and the last delta of the whole stream carries
    ``usage`` for all choices (prompt tokens counted once).
    """

    index: int = 0
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_deltas: tuple[ToolCallDelta, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: FinishReason | None = None
    # with finish_reason stop: the stop sequence that ended the choice (None: the model's own end, or an
    # engine that cannot tell)
    stop_sequence: str | None = None
    usage: Usage | None = None
    sources: tuple[Source, ...] = ()


class ToolCallAssembler:
    """Puts one choice's calls back together from whole calls and pieces, in order."""

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments...]

    def add(self, delta: ChatDelta) -> None:
        for call in delta.tool_calls:
            self._calls[len(self._calls)] = [call.id, call.name, call.arguments]
        for piece in delta.tool_call_deltas:
            parts = self._calls.setdefault(piece.index, ["", "", ""])
            if piece.id:
                parts[0] = piece.id
            if piece.name:
                parts[1] = piece.name
            parts.append(piece.arguments)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=parts[0], name=parts[1], arguments="".join(parts[2:]))
            for _, parts in sorted(self._calls.items())
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """One finished alternative of a completion."""

    index: int
    message: Message
    finish_reason: FinishReason
    logprobs: tuple[TokenLogprob, ...] | None = None
    stop_sequence: str | None = None  # the stop sequence that ended it, where the engine can tell


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResult:
    """A finished (non-streamed) completion."""

    model: str
    choices: tuple[Choice, ...]
    usage: Usage
    sources: tuple[Source, ...] = ()
    id: str = ""  # the completion id (logged under it); empty when the engine's result was not named yet
    conversation_id: str | None = None  # the logged conversation it belongs to


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """What a served model is."""

    id: str
    context_length: int
    owned_by: str = "mindfu"
    created: int = 0
    engine: str = ""
    source: str = ""
    supports_tools: bool = True
    supports_logprobs: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStats:
    """A snapshot of an engine's load, for health detail and metrics."""

    slots: int
    active: int
    queued: int
    max_queue: int
    requests_total: int
    tokens_generated_total: int
    ready: bool
    # prompt tokens of every request, and those of them an engine reused from its prompt cache
    prompt_tokens_total: int = 0
    cached_tokens_total: int = 0
    # an engine's host-memory cache of prompt prefixes: bytes held, and prefixes restored from it
    prompt_cache_bytes: int = 0
    prompt_cache_hits: int = 0
    # requests turned away with 429 because every slot was busy and the line full
    rejected_total: int = 0


class ChatStream:
    """The deltas of one streamed completion, with its id and conversation known before the first one."""

    def __init__(self, deltas: AsyncIterator[ChatDelta], *, id: str, conversation_id: str | None) -> None:
        self._deltas = deltas
        self.id = id
        self.conversation_id = conversation_id

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatDelta:
        return await anext(self._deltas)

    async def aclose(self) -> None:
        await aclose(self._deltas)
