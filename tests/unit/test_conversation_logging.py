"""Chats are logged: through the HTTP app, the durable queue and its writer, into the SQLite store."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.testclient import TestClient

from mindfu_core.domain.chat import ToolCall
from mindfu_core.domain.conversations import CompletionStatus, Conversation
from tests.fakes import Reply, ScriptedEngine
from tests.loopback import core_services

HEADER = "X-MindFu-Conversation-Id"


def logged(client: TestClient, conversation_id: str) -> Conversation:
    """The conversation as stored, once the log's writer has caught up."""
    services = core_services(client)

    async def read() -> Conversation:
        # errors and cancellations are handed over in the background: poll until the writer has them
        for _ in range(100):
            assert await services.completion_log.flush(10.0)
            found = await services.conversations.list(limit=200)
            if any(item.id == conversation_id for item in found.items):
                break
            await asyncio.sleep(0.05)
        return await services.conversations.get(conversation_id)

    return client.portal.call(read)  # type: ignore[union-attr]


def chat(client: TestClient, messages: list[dict[str, Any]], **extra: Any) -> Any:
    headers = extra.pop("headers", {})
    response = client.post(
        "/v1/chat/completions", json={"model": "scripted", "messages": messages, **extra}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


def test_a_chat_is_logged_with_its_usage_and_parameters(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="Paris is the capital.")])
    with make_client(engine) as client:
        response = chat(
            client, [{"role": "user", "content": "Capital of France?"}], temperature=0.2, user="u-42"
        )
        body = response.json()
        conversation_id = response.headers[HEADER]
        assert body["mindfu"]["conversation_id"] == conversation_id
        conversation = logged(client, conversation_id)
    assert [m.content for m in conversation.messages] == ["Capital of France?", "Paris is the capital."]
    (completion,) = conversation.completions
    assert completion.id == body["id"]
    assert completion.status is CompletionStatus.OK
    assert completion.usage.completion_tokens == body["usage"]["completion_tokens"] == 4
    assert completion.parameters["temperature"] == 0.2
    assert completion.user == "u-42" and completion.latency_ms > 0
    assert conversation.summary.title == "Capital of France?"


def test_a_follow_up_continues_the_conversation(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="Hi there."), Reply(text="Fine, thanks.")])
    with make_client(engine) as client:
        first = chat(client, [{"role": "user", "content": "Hello"}])
        conversation_id = first.headers[HEADER]
        history = [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": first.json()["choices"][0]["message"]["content"]},
            {"role": "user", "content": "How are you?"},
        ]
        second = chat(client, history)
        assert second.headers[HEADER] == conversation_id
        other = chat(client, [{"role": "user", "content": "Hello"}])
        assert other.headers[HEADER] != conversation_id  # same words, a new conversation
        conversation = logged(client, conversation_id)
    assert [m.content for m in conversation.messages] == [
        "Hello",
        "Hi there.",
        "How are you?",
        "Fine, thanks.",
    ]
    assert len(conversation.completions) == 2


def test_the_client_can_name_the_conversation(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="ok")])) as client:
        by_header = chat(client, [{"role": "user", "content": "a"}], headers={HEADER: "ticket-1234"})
        assert by_header.headers[HEADER] == "ticket-1234"
        by_field = chat(client, [{"role": "user", "content": "b"}], mindfu={"conversation_id": "ticket-1234"})
        assert by_field.json()["mindfu"]["conversation_id"] == "ticket-1234"
        conversation = logged(client, "ticket-1234")
        assert len(conversation.completions) == 2
        bad = client.post(
            "/v1/chat/completions",
            json={"model": "scripted", "messages": [{"role": "user", "content": "c"}]},
            headers={HEADER: "no spaces allowed"},
        )
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "conversation_id"
        clash = client.post(
            "/v1/chat/completions",
            json={
                "model": "scripted",
                "messages": [{"role": "user", "content": "c"}],
                "mindfu": {"conversation_id": "x1"},
            },
            headers={HEADER: "x2"},
        )
        assert clash.status_code == 400


def test_a_stream_is_logged_with_its_time_to_first_token(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="one two three")])) as client:
        response = client.post(
            "/v1/chat/completions",
            json={
                "model": "scripted",
                "messages": [{"role": "user", "content": "count"}],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
        conversation_id = response.headers[HEADER]
        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
        assert events[0]["mindfu"]["conversation_id"] == conversation_id
        assert all("mindfu" not in e for e in events[1:])
        conversation = logged(client, conversation_id)
    (completion,) = conversation.completions
    assert completion.id == events[0]["id"]
    assert completion.responses[0].content == "one two three"
    assert completion.ttft_ms is not None and completion.ttft_ms <= completion.latency_ms
    assert completion.usage.completion_tokens == 3


def test_tool_calls_are_logged(make_client: Any) -> None:
    call = ToolCall(id="call_1", name="weather", arguments='{"city": "Oslo"}')
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    with make_client(ScriptedEngine([Reply(tool_calls=(call,))])) as client:
        response = chat(client, [{"role": "user", "content": "Weather in Oslo?"}], tools=tools)
        conversation = logged(client, response.headers[HEADER])
    assert conversation.messages[-1].tool_calls == (call,)
    assert conversation.tools[0]["function"]["name"] == "weather"


def test_an_engine_error_is_logged_as_an_error(make_client: Any) -> None:
    with make_client(ScriptedEngine(context_length=8)) as client:
        response = client.post(
            "/v1/chat/completions",
            json={
                "model": "scripted",
                "messages": [{"role": "user", "content": "far too many words for this tiny context"}],
                "mindfu": {"conversation_id": "conv-err"},
            },
        )
        assert response.status_code == 400
        conversation = logged(client, "conv-err")
    assert conversation.summary.last_status is CompletionStatus.ERROR
    assert "ContextLengthExceeded" in (conversation.completions[0].error or "")


def test_health_shows_the_log(make_client: Any) -> None:
    with make_client() as client:
        chat(client, [{"role": "user", "content": "hi"}])
        detail = client.get("/health/ready").json()["conversation_log"]
    assert set(detail) >= {"queue_depth", "oldest_age_s", "write_failures", "dead_lettered", "retrying"}


def test_logging_can_be_switched_off(make_client: Any) -> None:
    with make_client(conversations={"enabled": False}) as client:
        response = chat(client, [{"role": "user", "content": "hi"}])
        assert HEADER not in response.headers and "mindfu" not in response.json()
        assert "conversation_log" not in client.get("/health/ready").json()
