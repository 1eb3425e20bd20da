"""Every domain type that crosses gRPC survives the trip whole, and every proto field is filled.

Each domain object here has every field set to a value other than its default (``filled``). It goes through
its ``*_to_pb`` and comes back through its ``*_from_pb``, and must be equal to what went in. On the way, every
field of the proto message, nested messages included, must have been set. So a field added to a domain type
and not to its message (or the other way round), or forgotten in a mapping, fails here. The few proto fields
that carry nothing of the domain object are listed in ``NOT_FROM_THE_OBJECT`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from google.protobuf.message import Message as ProtoMessage

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    Choice,
    FinishReason,
    Message,
    ModelInfo,
    SamplingParams,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    TopLogprob,
    Usage,
)
from mindfu_core.domain.conversations import (
    Conversation,
    ConversationFilter,
    ConversationSummary,
    Feedback,
)
from mindfu_core.domain.documents import Chunk, ChunkingPolicy, Document, Filter, ScoredChunk
from mindfu_core.domain.retrieval import RetrievalOptions, Source
from mindfu_core.domain.training import JobEvent, JobSpec, TrainingFile, TrainingJob
from mindfu_grpc.mapping import chat, conversations, documents, results, retrieval, training
from tests.samples import FLIP_BOOLS, filled

#: proto fields a mapping sets from something other than the domain object, and why
NOT_FROM_THE_OBJECT: dict[str, str] = {
    "mindfu.v1.CompleteResponse.created": "the server's clock at answer time (an argument of result_to_pb)",
    "mindfu.v1.StreamCompleteResponse.id": "the completion's id, known to the stream, not to a delta",
    "mindfu.v1.StreamCompleteResponse.model": "the request's model, passed beside the delta",
    "mindfu.v1.StreamCompleteResponse.conversation_id": "the stream's conversation, passed beside the delta",
    "mindfu.v1.Chunking.whole": "the other answer to 'how to chunk': no policy, one chunk (chunk=False)",
    **{
        f"mindfu.v1.CreateJobRequest.{name}": "a hand-written client's shortcut; the full message carries it"
        for name in ("epochs", "max_steps", "learning_rate", "lora_r", "load_in_4bit", "min_turns")
    },
}


# --- every proto field set -------------------------------------------------------------------------------


def unset_fields(message: ProtoMessage, exempt: Mapping[str, str] = NOT_FROM_THE_OBJECT) -> list[str]:
    """The full names of the fields of ``message`` (and of the messages in it) that hold nothing."""
    missing: list[str] = []
    for field in message.DESCRIPTOR.fields:
        if field.full_name in exempt:
            continue
        oneof = field.containing_oneof
        if oneof is not None and not oneof.name.startswith("_"):  # a real oneof: one of them is enough
            if message.WhichOneof(oneof.name) is None:
                missing.append(field.full_name)
            continue
        value = getattr(message, field.name)
        if field.is_repeated:
            if not value:
                missing.append(field.full_name)
                continue
            if field.message_type is not None and not field.message_type.GetOptions().map_entry:
                for item in value:
                    missing.extend(unset_fields(item, exempt))
            continue
        if field.message_type is not None:
            if not message.HasField(field.name):
                missing.append(field.full_name)
            elif field.message_type.full_name != "google.protobuf.Timestamp":
                missing.extend(unset_fields(value, exempt))
            continue
        if field.has_presence:
            if not message.HasField(field.name):
                missing.append(field.full_name)
        elif value == field.default_value:
            missing.append(field.full_name)
    return sorted(set(missing))


# --- the pairs -------------------------------------------------------------------------------------------


def _message() -> Message:
    return filled(Message, tool_calls=(filled(ToolCall),))


def _logprob() -> TokenLogprob:
    return filled(TokenLogprob, top=(filled(TopLogprob),))


def _choice() -> Choice:
    return filled(Choice, message=_message(), logprobs=(_logprob(),), finish_reason=FinishReason.TOOL_CALLS)


def _chunk() -> Chunk:
    return filled(Chunk, collection="docs")


#: what a logged completion's choices do not carry (its request's choices had them; the log keeps less)
LOGGED_CHOICES = {
    "mindfu.v1.Choice.index": "the choice's position, 0 for the first",
    "mindfu.v1.Choice.logprobs": "the log keeps messages and finish reasons, not log-probabilities",
    "mindfu.v1.Choice.stop_sequence": "the log keeps messages and finish reasons, not the stop string",
}


Case = tuple[Any, Callable[[Any], ProtoMessage], Callable[[ProtoMessage], Any]]

CASES: dict[str, Callable[[], Case]] = {
    "message": lambda: (_message(), chat.message_to_pb, chat.message_from_pb),
    "tool call delta": lambda: (
        filled(ToolCallDelta),
        chat.tool_call_delta_to_pb,
        chat.tool_call_delta_from_pb,
    ),
    "sampling": lambda: (filled(SamplingParams, top_logprobs=5), chat.sampling_to_pb, chat.sampling_from_pb),
    "usage": lambda: (filled(Usage), results.usage_to_pb, results.usage_from_pb),
    "choice": lambda: (_choice(), results.choice_to_pb, results.choice_from_pb),
    "source": lambda: (filled(Source), retrieval.source_to_pb, retrieval.source_from_pb),
    "result": lambda: (
        filled(ChatResult, choices=(_choice(),), sources=(filled(Source),)),
        lambda r: results.result_to_pb(r, 1_700_000_000),
        results.result_from_pb,
    ),
    "delta": lambda: (
        filled(
            ChatDelta,
            tool_calls=(filled(ToolCall),),
            logprobs=(_logprob(),),
            sources=(filled(Source),),
            finish_reason=FinishReason.LENGTH,
        ),
        lambda d: results.delta_to_pb(d, completion_id="chatcmpl-1", model="m", conversation_id="conv-1"),
        results.delta_from_pb,
    ),
    "model": lambda: (filled(ModelInfo), results.model_to_pb, results.model_from_pb),
    "filter": lambda: (filled(Filter), retrieval.filter_to_pb, retrieval.filter_from_pb),
    "retrieval options": lambda: (
        filled(RetrievalOptions, where=filled(Filter)),
        retrieval.retrieval_to_pb,
        lambda pb: retrieval.retrieval_overrides(pb).apply(RetrievalOptions()),
    ),
    "document": lambda: (filled(Document), documents.document_to_pb, documents.document_from_pb),
    "hit": lambda: (
        filled(ScoredChunk, chunk=_chunk()),
        documents.hit_to_pb,
        lambda pb: documents.hit_from_pb(pb, "docs"),
    ),
    "chunking": lambda: (
        filled(ChunkingPolicy),
        documents.chunking_to_pb,
        lambda pb: documents.chunking_from_pb(pb, ChunkingPolicy()),
    ),
    "conversation filter": lambda: (
        filled(ConversationFilter),
        conversations.filter_to_pb,
        conversations.filter_from_pb,
    ),
    "conversation summary": lambda: (
        filled(ConversationSummary),
        conversations.summary_to_pb,
        conversations.summary_from_pb,
    ),
    "feedback": lambda: (filled(Feedback), conversations.feedback_to_pb, conversations.feedback_from_pb),
    "conversation": lambda: (
        filled(
            Conversation,
            messages=(_message(),),
            feedback=(filled(Feedback),),
            summary=filled(ConversationSummary),
        ),
        conversations.conversation_to_pb,
        conversations.conversation_from_pb,
    ),
    "training file": lambda: (filled(TrainingFile), training.file_to_pb, training.file_from_pb),
    "job event": lambda: (
        filled(JobEvent, job_id="ftjob-1"),
        training.event_to_pb,
        lambda pb: training.event_from_pb(pb, "ftjob-1"),
    ),
    "job spec": lambda: (
        filled(JobSpec),
        training.spec_to_pb,
        lambda pb: training.spec_from_pb(pb, "unused-default-experiment"),
    ),
    "job": lambda: (filled(TrainingJob), training.job_to_pb, training.job_from_pb),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_domain_object_survives_grpc_whole_and_fills_its_message(name: str) -> None:
    value, to_pb, from_pb = CASES[name]()
    message = to_pb(value)
    exempt = NOT_FROM_THE_OBJECT | (LOGGED_CHOICES if name == "conversation" else {})
    assert unset_fields(message, exempt) == [], f"{name}: proto fields the mapping left empty"
    assert from_pb(message) == value
    flip = FLIP_BOOLS.set(True)
    try:
        flipped, _, _ = CASES[name]()
    finally:
        FLIP_BOOLS.reset(flip)
    assert from_pb(to_pb(flipped)) == flipped
