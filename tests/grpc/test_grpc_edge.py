"""Every RPC of the gRPC edge through a real server and the generated stubs: shapes, streaming, statuses
with their details, authentication, health and reflection, and size limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import grpc
from mindfu_core.domain.chat import ToolCall
from mindfu_grpc._pb.mindfu.v1 import (
    chat_pb2,
    conversations_pb2,
    documents_pb2,
    embeddings_pb2,
    models_pb2,
    retrieval_pb2,
)
from mindfu_grpc.server import SERVICE_NAMES
from tests.fakes import Reply, ScriptedEngine
from tests.grpc.conftest import CoreFactory

USER = [chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, content="hello there")]


def details_of(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The google.rpc details of a failed call: ErrorInfo, BadRequest and RetryInfo, by name."""
    found: dict[str, Any] = {}
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                for kind in (
                    error_details_pb2.ErrorInfo,
                    error_details_pb2.BadRequest,
                    error_details_pb2.RetryInfo,
                ):
                    if detail.Is(kind.DESCRIPTOR):
                        message = kind()
                        detail.Unpack(message)
                        found[kind.__name__] = message
        elif key == "x-request-id":
            found["request_id"] = value
    return found


async def test_models_list_and_get(make_core: CoreFactory) -> None:
    async with make_core() as core:
        listed = await core.models.ListModels(models_pb2.ListModelsRequest())
        assert [m.id for m in listed.models] == ["scripted"]
        assert listed.models[0].context_length == 256 and listed.models[0].engine == "scripted"
        got = await core.models.GetModel(models_pb2.GetModelRequest(id="scripted"))
        assert got.model.id == "scripted"
        status = await core.models.GetStatus(models_pb2.GetStatusRequest())
        assert status.ready
        (engine,) = status.detail["engines"]
        assert engine["model"] == "scripted" and engine["slots"] == 1 and engine["ready"] is True
        assert "queue_depth" in status.detail["conversation_log"]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.models.GetModel(models_pb2.GetModelRequest(id="nope"))
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        info = details_of(caught.value)["ErrorInfo"]
        assert info.reason == "model_not_found" and info.metadata["param"] == "model"


async def test_complete_returns_the_answer_usage_and_conversation(make_core: CoreFactory) -> None:
    async with make_core(ScriptedEngine([Reply(text="Paris is the capital.")])) as core:
        reply = await core.chat.Complete(chat_pb2.CompleteRequest(model="scripted", messages=USER))
        assert reply.id.startswith("chatcmpl-") and reply.model == "scripted" and reply.created > 0
        assert reply.choices[0].message.role == chat_pb2.ROLE_ASSISTANT
        assert reply.choices[0].message.content == "Paris is the capital."
        assert reply.choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (
            4,
            4,
            8,
        )
        assert reply.conversation_id.startswith("conv_")
        request = core.engine.requests[-1]
        # unset fields: the model's defaults (the engine's settings) for sampling, one choice
        assert request.sampling.temperature is None and request.sampling.top_p is None and request.n == 1


async def test_stream_complete_delivers_pieces_finish_and_usage(make_core: CoreFactory) -> None:
    async with make_core(ScriptedEngine([Reply(text="a b c d")])) as core:
        options = chat_pb2.CompletionOptions(sampling=chat_pb2.SamplingParams(max_tokens=3, temperature=0.0))
        call = core.chat.StreamComplete(
            chat_pb2.StreamCompleteRequest(model="scripted", messages=USER, options=options)
        )
        pieces = [piece async for piece in call]
        assert "".join(p.content for p in pieces) == "a b c"
        assert [p.finish_reason for p in pieces if p.finish_reason] == [chat_pb2.FINISH_REASON_LENGTH]
        assert [p.usage.completion_tokens for p in pieces if p.HasField("usage")] == [3]
        assert len({p.id for p in pieces}) == 1 and pieces[0].id.startswith("chatcmpl-")
        assert all(p.conversation_id.startswith("conv_") for p in pieces)
        assert core.engine.requests[-1].sampling.temperature == 0.0


async def test_tool_calls_and_their_options_cross_the_wire(make_core: CoreFactory) -> None:
    call = ToolCall(id="call_1", name="weather", arguments='{"city": "Paris"}')
    async with make_core(ScriptedEngine([Reply(tool_calls=(call,))])) as core:
        options = chat_pb2.CompletionOptions(
            tools=[chat_pb2.Tool(name="weather", parameters_json=json.dumps({"type": "object"}))],
            tool_choice=chat_pb2.ToolChoice(mode=chat_pb2.TOOL_CHOICE_MODE_FUNCTION, name="weather"),
        )
        reply = await core.chat.Complete(
            chat_pb2.CompleteRequest(model="scripted", messages=USER, options=options)
        )
        assert reply.choices[0].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
        (got,) = reply.choices[0].message.tool_calls
        assert (got.id, got.name, json.loads(got.arguments)) == ("call_1", "weather", {"city": "Paris"})
        seen = core.engine.requests[-1]
        assert seen.tools[0].parameters == {"type": "object"}  # type: ignore[union-attr]
        assert seen.tool_choice.name == "weather"  # type: ignore[union-attr]


async def test_text_completions_unary_and_streamed(make_core: CoreFactory) -> None:
    async with make_core(ScriptedEngine([Reply(text="once upon a time")])) as core:
        reply = await core.chat.CompleteText(chat_pb2.CompleteTextRequest(model="scripted", prompt="Tell me"))
        assert reply.id.startswith("cmpl-") and reply.choices[0].text == "once upon a time"
        call = core.chat.StreamCompleteText(
            chat_pb2.StreamCompleteTextRequest(model="scripted", prompt="Tell me")
        )
        pieces = [piece async for piece in call]
        assert "".join(p.text for p in pieces) == "once upon a time"
        assert [p.finish_reason for p in pieces if p.finish_reason] == [chat_pb2.FINISH_REASON_STOP]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            chat_pb2.CompleteRequest(model="scripted", messages=[chat_pb2.ChatMessage(content="x")]),
            "messages[0].role",
        ),
        (chat_pb2.CompleteRequest(model="scripted"), "messages"),
        (
            chat_pb2.CompleteRequest(
                model="scripted",
                messages=USER,
                options=chat_pb2.CompletionOptions(sampling=chat_pb2.SamplingParams(temperature=5)),
            ),
            "temperature",
        ),
        (
            chat_pb2.CompleteRequest(
                model="scripted",
                messages=USER,
                options=chat_pb2.CompletionOptions(tools=[chat_pb2.Tool(name="f", parameters_json="{")]),
            ),
            "tools[0].parameters_json",
        ),
        (
            chat_pb2.CompleteRequest(
                model="scripted",
                messages=USER,
                options=chat_pb2.CompletionOptions(retrieval=retrieval_pb2.RetrievalOptions(top_k=0)),
            ),
            "mindfu.rag.top_k",
        ),
    ],
)
async def test_invalid_requests_name_the_field(make_core: CoreFactory, request_: Any, field: str) -> None:
    async with make_core() as core:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.chat.Complete(request_)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        violations = details_of(caught.value)["BadRequest"].field_violations
        assert [v.field for v in violations] == [field]
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            stream = chat_pb2.StreamCompleteRequest(
                model=request_.model, messages=request_.messages, options=request_.options
            )
            async for _ in core.chat.StreamComplete(stream):
                pass
        assert streamed.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_context_length_exceeded_is_invalid_argument(make_core: CoreFactory) -> None:
    async with make_core(ScriptedEngine(context_length=8)) as core:
        long = [chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, content="word " * 50)]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.chat.Complete(chat_pb2.CompleteRequest(model="scripted", messages=long))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert details_of(caught.value)["ErrorInfo"].reason == "context_length_exceeded"


async def test_embed(make_core: CoreFactory) -> None:
    async with make_core() as core:
        found = await core.embeddings.Embed(
            embeddings_pb2.EmbedRequest(model="hash-bow", inputs=["a b", "c"])
        )
        assert found.model == "hash-bow" and [e.index for e in found.embeddings] == [0, 1]
        assert len(found.embeddings[0].values) == 64 and found.prompt_tokens == 3
        for request, code in (
            (embeddings_pb2.EmbedRequest(model="other", inputs=["a"]), grpc.StatusCode.NOT_FOUND),
            (embeddings_pb2.EmbedRequest(model="hash-bow"), grpc.StatusCode.INVALID_ARGUMENT),
            (
                embeddings_pb2.EmbedRequest(model="hash-bow", inputs=["a"], dimensions=8),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await core.embeddings.Embed(request)
            assert caught.value.code() is code


async def _upload(core: Any, data: bytes, name: str, piece: int = 7, **info: Any) -> Any:
    async def messages() -> Any:
        yield documents_pb2.UploadDocumentRequest(info=documents_pb2.UploadInfo(name=name, **info))
        for start in range(0, len(data), piece):
            yield documents_pb2.UploadDocumentRequest(data=data[start : start + piece])

    return await core.documents.UploadDocument(messages())


async def test_documents_upload_list_get_retrieve_ground_and_delete(make_core: CoreFactory) -> None:
    async with make_core(ScriptedEngine([Reply(text="It is 7341.")])) as core:
        text = b"The velmora access code is 7341.\n\nIt opens the north gate."
        uploaded = await _upload(core, text, "../secret/notes.txt", metadata_json='{"team": "blue"}')
        document = uploaded.document
        assert not uploaded.duplicate and document.name == "notes.txt" and document.collection == "default"
        assert document.media_type.startswith("text/") and document.chunk_count >= 1
        assert json.loads(document.metadata_json) == {"team": "blue"} and document.created_at.seconds > 0
        again = await _upload(core, text, "copy.txt", piece=1000)
        assert again.duplicate and again.document.id == document.id

        added = await core.documents.AddText(
            documents_pb2.AddTextRequest(content="Unrelated words about cats.", name="cats")
        )
        listed = await core.documents.ListDocuments(documents_pb2.ListDocumentsRequest(limit=1))
        assert len(listed.documents) == 1 and listed.has_more
        got = await core.documents.GetDocument(documents_pb2.GetDocumentRequest(id=document.id))
        assert got.document.sha256 == document.sha256

        where = retrieval_pb2.MetadataFilter(
            metadata={"team": retrieval_pb2.FilterValue(string_value="blue")}
        )
        options = retrieval_pb2.RetrievalOptions(top_k=2, min_score=-1.0, where=where)
        hits = await core.documents.Retrieve(
            documents_pb2.RetrieveRequest(query="velmora access code", options=options)
        )
        assert hits.collection == "default"
        assert [c.document_id for c in hits.chunks] == [document.id] and "7341" in hits.chunks[0].text

        request = chat_pb2.CompleteRequest(
            model="scripted",
            messages=[
                chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, content="What is the velmora access code?")
            ],
            options=chat_pb2.CompletionOptions(
                retrieval=retrieval_pb2.RetrievalOptions(min_score=0.1, hybrid=False)
            ),
        )
        reply = await core.chat.Complete(request)
        assert [s.document_id for s in reply.sources] == [document.id] and reply.sources[0].number == 1
        assert "7341" in (core.engine.requests[-1].messages[0].content or "")  # type: ignore[union-attr]
        pieces = [p async for p in core.chat.StreamComplete(chat_pb2.StreamCompleteRequest(
            model="scripted", messages=request.messages, options=request.options
        ))]  # fmt: skip
        assert [s.document_id for s in pieces[-1].sources] == [document.id]

        deleted = await core.documents.DeleteDocument(documents_pb2.DeleteDocumentRequest(id=document.id))
        assert deleted.document.id == document.id
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.documents.GetDocument(documents_pb2.GetDocumentRequest(id=document.id))
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        assert added.document.id != document.id

        defaults = await core.documents.GetDefaults(documents_pb2.GetDefaultsRequest())
        assert defaults.retrieval.top_k == 4 and defaults.retrieval.collection == "default"
        assert (defaults.chunking.size, defaults.chunking.overlap) == (512, 50)


async def test_bad_uploads(make_core: CoreFactory) -> None:
    async with make_core(rag={"max_upload_bytes": 100}) as core:

        async def data_first() -> Any:
            yield documents_pb2.UploadDocumentRequest(data=b"abc")

        for messages, code in ((data_first(), grpc.StatusCode.INVALID_ARGUMENT),):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await core.documents.UploadDocument(messages)
            assert caught.value.code() is code
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _upload(core, b"x" * 101, "big.txt", piece=50)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _upload(core, b"%PDF-1.7 not really a pdf", "a.pdf")
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.documents.ListDocuments(documents_pb2.ListDocumentsRequest(limit=5000))
        assert details_of(caught.value)["BadRequest"].field_violations[0].field == "limit"


async def test_a_message_over_the_size_limit_is_resource_exhausted(make_core: CoreFactory) -> None:
    async with make_core(grpc={"max_message_bytes": 4096}) as core:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.documents.AddText(documents_pb2.AddTextRequest(content="x" * 10_000))
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        # the server lives on
        assert (await core.models.ListModels(models_pb2.ListModelsRequest())).models


async def test_conversations_list_get_feedback_export_delete(make_core: CoreFactory) -> None:
    async with make_core(ScriptedEngine([Reply(text="Fine, thanks.")])) as core:
        reply = await core.chat.Complete(chat_pb2.CompleteRequest(
            model="scripted", messages=USER, options=chat_pb2.CompletionOptions(user="alice")
        ))  # fmt: skip
        assert core.services.completion_log is not None
        assert await core.services.completion_log.flush(10.0)
        listed = await core.conversations.ListConversations(conversations_pb2.ListConversationsRequest())
        (summary,) = listed.conversations
        assert summary.id == reply.conversation_id and summary.user == "alice"
        assert summary.last_status == conversations_pb2.COMPLETION_STATUS_OK and summary.completion_count == 1
        got = await core.conversations.GetConversation(
            conversations_pb2.GetConversationRequest(id=summary.id)
        )
        assert [m.content for m in got.conversation.messages] == ["hello there", "Fine, thanks."]
        (completion,) = got.conversation.completions
        assert completion.id == reply.id and completion.usage.completion_tokens == 2
        assert json.loads(completion.parameters_json)["n"] == 1

        feedback = await core.conversations.AddFeedback(
            conversations_pb2.AddFeedbackRequest(conversation_id=summary.id, rating=1, comment="good")
        )
        assert feedback.feedback.rating == 1 and feedback.feedback.comment == "good"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.conversations.AddFeedback(
                conversations_pb2.AddFeedbackRequest(conversation_id=summary.id, rating=9)
            )
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        rated = conversations_pb2.ConversationFilter(rated=True, min_turns=1)
        exported = [
            e.conversation
            async for e in core.conversations.ExportConversations(
                conversations_pb2.ExportConversationsRequest(filter=rated)
            )
        ]
        assert [c.summary.id for c in exported] == [summary.id] and exported[0].summary.rating == 1
        assert [m.content for m in exported[0].messages] == ["hello there", "Fine, thanks."]

        await core.conversations.DeleteConversation(
            conversations_pb2.DeleteConversationRequest(id=summary.id)
        )
        for call in (
            core.conversations.GetConversation(conversations_pb2.GetConversationRequest(id=summary.id)),
            core.conversations.DeleteConversation(conversations_pb2.DeleteConversationRequest(id=summary.id)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.conversations.ListConversations(
                conversations_pb2.ListConversationsRequest(cursor="garbage")
            )
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_api_keys_guard_every_service_but_health_and_reflection(make_core: CoreFactory) -> None:
    async with make_core(api_keys="sekret") as core:
        request = models_pb2.ListModelsRequest()
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await core.models.ListModels(request, metadata=metadata)
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in core.chat.StreamComplete(
                chat_pb2.StreamCompleteRequest(model="scripted", messages=USER)
            ):
                pass
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert (await core.models.ListModels(request, metadata=(("authorization", "Bearer sekret"),))).models
        assert (await core.models.ListModels(request, metadata=(("x-api-key", "sekret"),))).models

        health = health_pb2_grpc.HealthStub(core.channel)
        for service in ("", *SERVICE_NAMES):
            found = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert found.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(core.channel)

        async def ask() -> Any:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for answer in reflection.ServerReflectionInfo(ask()):
            names = {s.name for s in answer.list_services_response.service}
            assert set(SERVICE_NAMES) | {"grpc.health.v1.Health"} <= names
            break


async def test_every_call_gets_a_request_id(make_core: CoreFactory) -> None:
    async with make_core() as core:
        call = core.models.ListModels(
            models_pb2.ListModelsRequest(), metadata=(("x-request-id", "req_mine"),)
        )
        await call
        assert ("x-request-id", "req_mine") in tuple(await call.trailing_metadata())
