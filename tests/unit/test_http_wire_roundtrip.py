"""Every domain type that crosses MindFu's HTTP API survives the trip whole: the edge's serializer (or the
client's request builder) and the client's parser (or the edge's request model) are each other's inverse.

Each object has every field set to a value other than its default (``tests.samples.filled``), then once
more with every boolean flipped. So a field added to a domain type and forgotten by the HTTP wire on either
side fails here. What OpenAI's shapes do not carry is listed in ``NOT_ON_THE_WIRE`` with the reason.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    FinishReason,
    Message,
    ModelInfo,
    Role,
    SamplingParams,
    TextRequest,
    TokenLogprob,
    ToolCall,
    ToolCallAssembler,
    TopLogprob,
)
from mindfu_core.domain.conversations import (
    CallContext,
    Conversation,
    ConversationFilter,
    ConversationSummary,
    Feedback,
    LoggedCompletion,
)
from mindfu_core.domain.documents import Chunk, ChunkingPolicy, Document, Filter, ScoredChunk
from mindfu_core.domain.principals import DEFAULT_TENANT, Principal, Scope
from mindfu_core.domain.retrieval import RetrievalOptions, Source
from mindfu_core.domain.training import Checkpoint, JobEvent, JobSpec, TrainingFile, TrainingJob
from mindfu_http.client import parse, parse_training
from mindfu_http.client.requests import filter_params, generation_body, job_body
from mindfu_http.conversations.routes import (
    conversation_object,
    export_filter,
    feedback_object,
    summary_object,
)
from mindfu_http.documents.routes import _hit, document_object, rag_object
from mindfu_http.openai import wire
from mindfu_http.openai.schemas import ChatCompletionIn, CompletionIn
from mindfu_http.training.wire import JobIn, checkpoint_object, event_object, file_object, job_object
from tests.samples import FLIP_BOOLS, filled

#: domain fields OpenAI's shapes have no place for, and why
NOT_ON_THE_WIRE = {
    "Choice.stop_sequence": "a chat completion names the finish reason, not the stop string",
    "Message.name/tool_call_id of a reply": "an assistant reply has content and tool calls only",
    "TextRequest.sampling.top_logprobs=0 with logprobs": "`logprobs: 0` is how a text request asks for them",
}


def _logprob() -> TokenLogprob:
    return filled(TokenLogprob, top=(filled(TopLogprob),))


def _reply() -> Message:
    return Message(role=Role.ASSISTANT, content="an answer", tool_calls=(filled(ToolCall),))


def _result() -> ChatResult:
    choice = filled(Choice, message=_reply(), logprobs=(_logprob(),), stop_sequence=None)
    return filled(ChatResult, choices=(choice,), sources=(filled(Source),))


def _completion() -> LoggedCompletion:
    return filled(
        LoggedCompletion,
        responses=(filled(Message, role=Role.ASSISTANT, tool_calls=(filled(ToolCall),)),),
        finish_reasons=(FinishReason.LENGTH,),
    )


def _job() -> TrainingJob:
    return filled(TrainingJob)


Case = tuple[Any, Callable[[Any], Any], Callable[[Any], Any]]

#: name -> (domain object, to the wire, back from the wire); JSON-encoded on the way, as it travels
CASES: dict[str, Callable[[], Case]] = {
    "model": lambda: (filled(ModelInfo), wire.model_object, parse.model_of),
    "chat result": lambda: (
        _result(),
        lambda r: wire.chat_completion(r, completion_id=r.id, created=1_700_000_000),
        lambda body: parse.result_of(body, chat=True),
    ),
    "text result": lambda: (
        filled(
            ChatResult,
            choices=(
                filled(
                    Choice,
                    message=Message(role=Role.ASSISTANT, content="text"),
                    logprobs=(_logprob(),),
                    stop_sequence=None,
                ),
            ),
            sources=(),
            conversation_id=None,
        ),
        lambda r: wire.text_completion(r, completion_id=r.id, created=1_700_000_000),
        lambda body: parse.result_of(body, chat=False),
    ),
    "document": lambda: (filled(Document), document_object, parse.document_of),
    "hit": lambda: (
        filled(ScoredChunk, chunk=filled(Chunk, collection="docs")),
        _hit,
        lambda body: parse.hit_of(body, "docs"),
    ),
    "retrieval defaults": lambda: (
        (filled(RetrievalOptions, where=filled(Filter)), filled(ChunkingPolicy, size=600, overlap=60)),
        lambda pair: {
            "rag": rag_object(pair[0]),
            "chunking": {"size": pair[1].size, "overlap": pair[1].overlap},
        },
        parse.defaults_of,
    ),
    "conversation summary": lambda: (filled(ConversationSummary), summary_object, parse.summary_of),
    "feedback": lambda: (filled(Feedback), feedback_object, parse.feedback_of),
    "conversation": lambda: (
        filled(
            Conversation,
            summary=filled(ConversationSummary),
            messages=(filled(Message, tool_calls=(filled(ToolCall),)),),
            completions=(_completion(),),
            feedback=(filled(Feedback),),
        ),
        conversation_object,
        parse.conversation_of,
    ),
    "training file": lambda: (filled(TrainingFile), file_object, parse_training.file_of),
    "job": lambda: (_job(), job_object, parse_training.job_of),
    "job event": lambda: (
        filled(JobEvent, job_id="ftjob-1"),
        event_object,
        lambda body: parse_training.event_of(body, "ftjob-1"),
    ),
    "checkpoint": lambda: (
        filled(Checkpoint, metrics={"loss": 0.5}),
        lambda c: checkpoint_object(_job(), c),
        parse_training.checkpoint_of,
    ),
}


def _travel(body: Any) -> Any:
    return json.loads(json.dumps(body))


@pytest.mark.parametrize("name", list(CASES))
def test_a_domain_object_survives_the_http_wire_whole(name: str) -> None:
    for flip in (False, True):
        token = FLIP_BOOLS.set(flip)
        try:
            value, to_wire, from_wire = CASES[name]()
        finally:
            FLIP_BOOLS.reset(token)
        assert from_wire(_travel(to_wire(value))) == value, f"{name} (booleans flipped: {flip})"


def _edge_chat(body: dict[str, Any]) -> tuple[ChatRequest, CallContext]:
    """The request and context the chat route builds from ``body`` (``call_context`` less the key)."""
    parsed = ChatCompletionIn.model_validate(_travel(body))
    request = parsed.to_core()
    extension = parsed.mindfu
    if extension is not None:
        overrides = extension.retrieval_overrides()
        if overrides is not None:
            request = dataclasses.replace(request, retrieval=overrides.apply(RetrievalOptions()))
    context = CallContext(
        conversation_id=extension.conversation_id if extension else None,
        user=parsed.user,
        log=extension.log if extension else True,
        previous_completion_id=extension.previous_completion_id if extension else None,
    )
    return request, context


@pytest.mark.parametrize("flip", [False, True])
def test_a_chat_request_and_its_context_reach_the_edge_whole(flip: bool) -> None:
    token = FLIP_BOOLS.set(flip)
    try:
        request = filled(
            ChatRequest,
            messages=(filled(Message, tool_calls=(filled(ToolCall),)),),
            retrieval=filled(RetrievalOptions, enabled=True, where=filled(Filter)),
            sampling=filled(SamplingParams, logprobs=True),
        )
        context = filled(CallContext, api_key_id=None, tenant=DEFAULT_TENANT)  # the server's, from the key
    finally:
        FLIP_BOOLS.reset(token)
    path, body = generation_body(request, context, stream=False)
    assert path == "/v1/chat/completions"
    assert _edge_chat(body) == (request, context)
    off = dataclasses.replace(request, retrieval=RetrievalOptions(enabled=False))
    assert _edge_chat(generation_body(off, context, stream=True)[1])[0].retrieval == RetrievalOptions(
        enabled=False
    )


def test_a_text_request_reaches_the_edge_whole() -> None:
    request = filled(TextRequest, sampling=filled(SamplingParams, logprobs=True, top_logprobs=3))
    path, body = generation_body(request, CallContext(), stream=False)
    assert path == "/v1/completions"
    assert CompletionIn.model_validate(_travel(body)).to_core() == request


@pytest.mark.parametrize("flip", [False, True])
def test_a_job_spec_reaches_the_edge_whole(flip: bool) -> None:
    token = FLIP_BOOLS.set(flip)
    try:
        spec = filled(JobSpec)
    finally:
        FLIP_BOOLS.reset(token)
    assert JobIn.model_validate(_travel(job_body(spec))).to_spec("the server's default") == spec


class Caller:
    """An application whose every caller is of tenant acme (the edge keeps filters to it)."""

    def __init__(self) -> None:
        self.keys = self

    async def whoami(self, credentials: str | None) -> Principal:
        return Principal(key_id=None, tenant="acme", scopes=frozenset(Scope))


def test_a_conversation_filter_reaches_the_edge_whole() -> None:
    app = FastAPI()
    app.state.services = Caller()
    seen: list[ConversationFilter] = []

    @app.get("/filter")
    def echo(where: Annotated[ConversationFilter, Depends(export_filter)]) -> None:
        seen.append(where)

    where = filled(ConversationFilter)
    with TestClient(app) as client:
        assert client.get("/filter", params=filter_params(where)).status_code == 200
        assert client.get("/filter", params={**filter_params(where), "tenant": "globex"}).status_code == 200
    assert seen == [dataclasses.replace(where, tenant="acme")] * 2  # the caller's tenant, whatever is asked


def test_a_streamed_delta_survives_the_wire() -> None:
    """A delta leaves as one event per part (choice, usage, sources); read back, they hold all of it. Tool
    calls come back as pieces (the wire does not tell a whole call from a first piece)."""
    delta = filled(
        ChatDelta,
        tool_calls=(filled(ToolCall),),
        tool_call_deltas=(),
        logprobs=(_logprob(),),
        sources=(filled(Source),),
        finish_reason=FinishReason.LENGTH,
        stop_sequence=None,
    )
    writer = wire.ChunkWriter(model="m", chat=True, include_usage=True, completion_id="chatcmpl-1")
    events = [json.loads(line.removeprefix(b"data: ")) for line in writer.delta(delta)]
    back = [d for event in events for d in parse.deltas_of(event, chat=True)]
    calls = ToolCallAssembler()
    for piece in back:
        calls.add(piece)
    assert calls.calls() == delta.tool_calls
    assert "".join(d.content for d in back) == delta.content
    assert [d.finish_reason for d in back if d.finish_reason] == [delta.finish_reason]
    assert [d.usage for d in back if d.usage] == [delta.usage]
    assert [d.sources for d in back if d.sources] == [delta.sources]
    assert [d.logprobs for d in back if d.logprobs] == [delta.logprobs]
    assert {d.index for d in back if d.content} == {delta.index}


def test_every_error_class_comes_back_from_its_error_object() -> None:
    """The client's tables are the inverse of the server's: each domain error, answered as the server
    answers it, is read back as the same class (a class added on one side only fails here)."""
    from mindfu_core.errors import ALL_ERRORS, MindFuError
    from mindfu_http.client.transport import STATUS_OF_TYPE, error_of
    from mindfu_http.errors import HTTP_ERRORS, error_body

    for cls in ALL_ERRORS:
        status, kind = HTTP_ERRORS[cls]
        body = error_body("why", kind, param="field", code=cls.code)
        back = error_of(status, body, {"retry-after": "3"})
        assert type(back) is cls, (cls, back)
        assert isinstance(back, MindFuError) and back.message == "why"
        # a stream's error event carries no status: the status its type suggests, and its code, give it
        assert type(error_of(STATUS_OF_TYPE.get(kind, 500), body)) is cls, (cls, kind)
