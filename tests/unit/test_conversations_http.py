"""The conversations API over HTTP: listing, reading, deleting, rating and exporting logged conversations.

Each test runs over the in-memory store and over the SQLite store the container builds, seeded through the
store itself (on the app's own event loop).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from fastapi.testclient import TestClient

from mindfu_adapters.container import build_container
from mindfu_adapters.services import resolve
from mindfu_adapters.settings import Settings
from mindfu_adapters.store.memory_conversations import InMemoryConversationStore
from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_core.domain.chat import FinishReason, Message, Role, ToolCall, Usage
from mindfu_core.domain.conversations import CompletionRecord, CompletionStatus, RetrievedChunk
from mindfu_core.ports.conversation_store import ConversationStore
from mindfu_http.app import create_app
from tests.fakes import HashEmbedder, ScriptedEngine
from tests.loopback import LoopbackCore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOOLS = [{"type": "function", "function": {"name": "weather", "description": "", "parameters": {}}}]
CALL = ToolCall(id="call_1", name="weather", arguments='{"city": "Paris"}')


@dataclass
class Api:
    client: TestClient
    store: ConversationStore

    def seed(self, *records: CompletionRecord) -> None:
        self.client.portal.call(self.store.record, list(records))  # type: ignore[union-attr]


@pytest.fixture(params=["memory", "sqlite"])
def api(request: pytest.FixtureRequest, tmp_path: Path, topology: str) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path, api_keys="k", conversations={"enabled": False})  # type: ignore[arg-type]
    container = build_container(settings)
    container.llm_engine.override(providers.Object(ScriptedEngine()))
    container.embedder.override(providers.Object(HashEmbedder()))
    container.vector_store.override(providers.Object(InMemoryVectorStore()))
    if request.param == "memory":
        container.conversation_store.override(providers.Object(InMemoryConversationStore()))
    headers = {"Authorization": "Bearer k"}
    runtime = LoopbackCore(container) if topology == "gateway" else None
    app = create_app(container, runtime=runtime)
    with TestClient(app, raise_server_exceptions=False, headers=headers) as client:
        store = client.portal.call(resolve, container.conversation_store)  # type: ignore[union-attr]
        yield Api(client, store)


def user(text: str) -> Message:
    return Message(role=Role.USER, content=text)


def record(
    number: int,
    messages: tuple[Message, ...],
    reply: Message | None = None,
    *,
    conversation: str,
    model: str = "smollm2",
    status: CompletionStatus = CompletionStatus.OK,
    user_name: str | None = "alice",
    tools: bool = False,
) -> CompletionRecord:
    reply = reply or Message(role=Role.ASSISTANT, content=f"answer {number}")
    parameters: dict[str, Any] = {"temperature": 0.5, "n": 1}
    if tools:
        parameters["tools"] = TOOLS
    return CompletionRecord(
        id=f"chatcmpl-{number:04d}",
        conversation_id=conversation,
        created_at=T0 + timedelta(minutes=number),
        model=model,
        messages=messages,
        responses=(reply,),
        finish_reasons=(FinishReason.TOOL_CALLS if reply.tool_calls else FinishReason.STOP,),
        parameters=parameters,
        usage=Usage(prompt_tokens=10, completion_tokens=5),
        latency_ms=120.5,
        ttft_ms=12.0,
        retrieved=(RetrievedChunk(document_id="doc-1", chunk_index=2, score=0.75),),
        status=status,
        error="EngineFailure: boom" if status is CompletionStatus.ERROR else None,
        api_key_id="key_0123456789abcdef",
        user=user_name,
    )


def tool_conversation() -> list[CompletionRecord]:
    """conv_tools: a question, a tool call, the tool's result, and the final answer."""
    first = record(
        1,
        (Message(role=Role.SYSTEM, content="be brief"), user("weather in Paris?")),
        Message(role=Role.ASSISTANT, content=None, tool_calls=(CALL,)),
        conversation="conv_tools",
        tools=True,
    )
    result = Message(role=Role.TOOL, content='{"temp": 21}', tool_call_id="call_1")
    second = record(2, (*first.transcript, result), conversation="conv_tools", tools=True)
    return [first, second]


def seed_many(api: Api) -> None:
    """conv_010..conv_014: models big/small alternating, conv_012 cancelled, users alice and bob."""
    api.seed(
        *(
            record(
                number,
                (user(f"question {number}"),),
                conversation=f"conv_{number:03d}",
                model="big" if number % 2 else "small",
                status=CompletionStatus.CANCELLED if number == 12 else CompletionStatus.OK,
                user_name="bob" if number == 14 else "alice",
            )
            for number in range(10, 15)
        )
    )


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def test_listing_pages_by_cursor_and_filters(api: Api) -> None:
    seed_many(api)
    client = api.client
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = client.get("/v1/conversations", params=params).json()
        assert page["object"] == "list" and len(page["data"]) <= 2
        seen.extend(item["id"] for item in page["data"])
        assert page["has_more"] is (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        params["after"] = page["next_cursor"]
    assert seen == [f"conv_{n:03d}" for n in (14, 13, 12, 11, 10)]

    item = client.get("/v1/conversations", params={"limit": 1}).json()["data"][0]
    assert item == {
        "id": "conv_014",
        "object": "conversation",
        "created_at": int((T0 + timedelta(minutes=14)).timestamp()),
        "updated_at": int((T0 + timedelta(minutes=14)).timestamp()),
        "model": "small",
        "title": "question 14",
        "message_count": 2,
        "completion_count": 1,
        "last_status": "ok",
        "rating": None,
        "user": "bob",
    }
    assert ids(client.get("/v1/conversations", params={"model": "big"})) == ["conv_013", "conv_011"]
    assert ids(client.get("/v1/conversations", params={"status": "cancelled"})) == ["conv_012"]
    assert ids(client.get("/v1/conversations", params={"user": "bob"})) == ["conv_014"]
    naive_since = (T0 + timedelta(minutes=13)).replace(tzinfo=None).isoformat()  # naive means UTC
    assert ids(client.get("/v1/conversations", params={"since": naive_since})) == ["conv_014", "conv_013"]
    until = (T0 + timedelta(minutes=11)).isoformat()
    assert ids(client.get("/v1/conversations", params={"until": until})) == ["conv_010"]

    assert client.post("/v1/conversations/conv_011/feedback", json={"rating": 5}).status_code == 200
    assert client.post("/v1/conversations/conv_012/feedback", json={"rating": -1}).status_code == 200
    assert ids(client.get("/v1/conversations", params={"rated": "true"})) == ["conv_012", "conv_011"]
    assert len(ids(client.get("/v1/conversations", params={"rated": "false"}))) == 3
    assert ids(client.get("/v1/conversations", params={"min_rating": 1})) == ["conv_011"]
    assert ids(client.get("/v1/conversations", params={"max_rating": 0})) == ["conv_012"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"status": "finished"}, "query.status"),
        ({"since": "yesterday"}, "query.since"),
        ({"rated": "maybe"}, "query.rated"),
        ({"after": "not-a-cursor"}, "cursor"),
    ],
)
def test_invalid_listing_queries_are_400(api: Api, params: dict[str, Any], param: str) -> None:
    response = api.client.get("/v1/conversations", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_a_conversation_with_its_completions_feedback_and_tools(api: Api) -> None:
    api.seed(*tool_conversation())
    client = api.client
    feedback = client.post(
        "/v1/conversations/conv_tools/feedback",
        json={"rating": 1, "comment": "useful", "completion_id": "chatcmpl-0002"},
    )
    assert feedback.status_code == 200, feedback.text
    body = client.get("/v1/conversations/conv_tools").json()
    assert body["id"] == "conv_tools" and body["object"] == "conversation"
    assert body["title"] == "weather in Paris?" and body["rating"] == 1
    assert (body["message_count"], body["completion_count"], body["last_status"]) == (5, 2, "ok")
    assert body["created_at"] == int((T0 + timedelta(minutes=1)).timestamp())
    assert body["updated_at"] == int((T0 + timedelta(minutes=2)).timestamp())
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    call = body["messages"][2]
    assert call["content"] is None
    assert call["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert body["messages"][3] == {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"}
    assert body["tools"] == TOOLS

    first, second = body["completions"]
    assert first["id"] == "chatcmpl-0001" and first["message_count"] == 2
    assert first["created"] == int((T0 + timedelta(minutes=1)).timestamp())
    assert first["choices"] == [{"index": 0, "message": call, "finish_reason": "tool_calls"}]
    assert second["choices"][0]["message"] == {"role": "assistant", "content": "answer 2"}
    assert second["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert second["parameters"] == {"temperature": 0.5, "n": 1, "tools": TOOLS}
    assert second["retrieved"] == [{"document_id": "doc-1", "chunk_index": 2, "score": 0.75}]
    assert (second["latency_ms"], second["ttft_ms"]) == (120.5, 12.0)
    assert (second["status"], second["error"], second["user"]) == ("ok", None, "alice")

    (note,) = body["feedback"]
    assert note == feedback.json() | {"object": "conversation.feedback"}
    assert note["conversation_id"] == "conv_tools" and note["comment"] == "useful"
    assert note["completion_id"] == "chatcmpl-0002" and note["id"].startswith("fb_")
    assert isinstance(note["created"], int)


def test_a_failed_completion_keeps_its_error(api: Api) -> None:
    api.seed(record(1, (user("hi"),), conversation="conv_err", status=CompletionStatus.ERROR))
    body = api.client.get("/v1/conversations/conv_err").json()
    assert body["last_status"] == "error" and body["messages"] == [{"role": "user", "content": "hi"}]
    (completion,) = body["completions"]
    assert completion["status"] == "error" and completion["error"] == "EngineFailure: boom"
    assert completion["choices"][0]["message"]["content"] == "answer 1"  # kept in its completion


def assert_not_found(response: Any) -> None:
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "not_found_error" and "conv_missing" in error["message"]


def test_unknown_conversations_are_404(api: Api) -> None:
    client = api.client
    assert_not_found(client.get("/v1/conversations/conv_missing"))
    assert_not_found(client.delete("/v1/conversations/conv_missing"))
    assert_not_found(client.post("/v1/conversations/conv_missing/feedback", json={"rating": 1}))


def test_delete_removes_the_conversation(api: Api) -> None:
    api.seed(*tool_conversation())
    client = api.client
    deleted = client.delete("/v1/conversations/conv_tools")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": "conv_tools", "object": "conversation.deleted", "deleted": True}
    assert client.get("/v1/conversations/conv_tools").status_code == 404
    assert client.delete("/v1/conversations/conv_tools").status_code == 404
    assert ids(client.get("/v1/conversations")) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"rating": 9}, "rating"),
        ({"rating": -2}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": 1.0}, "rating"),
        ({"rating": True}, "rating"),
        ({}, "rating"),
        ({"rating": 1, "stars": 3}, "stars"),
        ({"rating": 1, "comment": "x" * 10_001}, "comment"),
    ],
)
def test_invalid_feedback_is_400(api: Api, body: dict[str, Any], param: str) -> None:
    api.seed(*tool_conversation())
    response = api.client.post("/v1/conversations/conv_tools/feedback", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_feedback_on_a_completion_of_another_conversation_is_404(api: Api) -> None:
    api.seed(*tool_conversation(), record(5, (user("hi"),), conversation="conv_other"))
    response = api.client.post(
        "/v1/conversations/conv_other/feedback", json={"rating": 1, "completion_id": "chatcmpl-0001"}
    )
    assert response.status_code == 404 and response.json()["error"]["param"] == "completion_id"


def test_export_streams_finetuning_jsonl(api: Api) -> None:
    api.seed(*tool_conversation())
    seed_many(api)
    client = api.client
    response = client.get("/v1/conversations/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    # oldest first; conv_012 was cancelled, so it has no assistant message and no example
    assert len(lines) == 5
    tools = lines[0]
    assert tools["tools"] == TOOLS
    assert [m["role"] for m in tools["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert tools["messages"][2]["tool_calls"][0]["function"]["name"] == "weather"
    assert lines[1] == {
        "messages": [
            {"role": "user", "content": "question 10"},
            {"role": "assistant", "content": "answer 10"},
        ]
    }

    filtered = client.get("/v1/conversations/export", params={"min_turns": 2}).text.splitlines()
    assert [json.loads(line).get("tools") for line in filtered] == [TOOLS]
    short = client.get("/v1/conversations/export", params={"model": "big", "max_response_chars": 8})
    assert short.text == ""
    both = client.get("/v1/conversations/export", params={"model": "big", "min_response_chars": 9})
    assert [json.loads(line)["messages"][0]["content"] for line in both.text.splitlines()] == [
        "question 11",
        "question 13",
    ]
    bad = client.get("/v1/conversations/export", params={"min_turns": -1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "query.min_turns"


def test_the_routes_need_an_api_key(api: Api) -> None:
    response = api.client.get("/v1/conversations", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert api.client.get("/v1/conversations/export", headers={"Authorization": ""}).status_code == 401


@pytest.mark.parametrize(
    "query",
    ["min_rating=9999999999999999999", "max_rating=-9999999999999999999", "min_turns=99999999999999"],
)
def test_a_number_no_database_holds_is_a_400_naming_it(make_client: Any, query: str) -> None:
    """Filters are compared in SQL: a number past its integers is the client's mistake, not an overflow."""
    paths = ["/v1/conversations/export"] + ([] if query.startswith("min_turns") else ["/v1/conversations"])
    with make_client() as client:
        for path in paths:
            response = client.get(f"{path}?{query}")
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"]["param"] == query.split("=")[0]
