"""The Anthropic Messages API over the scripted engine, read with the official anthropic SDK."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import Message as AnthropicMessage
from anthropic.types import MessageTokensCount

from mindfu_core import ChatRequest, Role, ToolCall, ToolChoiceMode
from tests.fakes import Reply, ScriptedEngine

MAP = {"model_map": {"claude-*": "scripted"}}
USER = [{"role": "user", "content": "hi there"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sdk(client: Any, key: str = "unused") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url="http://testserver", api_key=key, http_client=client, max_retries=0)


def last_chat(engine: ScriptedEngine) -> ChatRequest:
    request = engine.requests[-1]
    assert isinstance(request, ChatRequest)
    return request


def logged_conversations(client: Any, count: int) -> list[dict[str, Any]]:
    """The logged conversations, once ``count`` of them have reached the store (logging is asynchronous)."""
    deadline = time.monotonic() + 10
    while True:
        listed: list[dict[str, Any]] = client.get("/v1/conversations").json()["data"]
        if len(listed) >= count or time.monotonic() > deadline:
            assert len(listed) == count
            return listed
        time.sleep(0.05)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_message_parses_strictly_and_maps_claude_model_names(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="Paris is the capital.")])
    with make_client(engine, anthropic=MAP) as client:
        raw = client.post(
            "/v1/messages",
            json={"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": USER},
            headers={"anthropic-version": "2023-06-01"},
        )
        assert raw.status_code == 200
        message = AnthropicMessage.model_validate(raw.json(), strict=True)
        reply = sdk(client).messages.create(model="claude-haiku-4-5", max_tokens=64, messages=USER)  # type: ignore[arg-type]
    assert message.id.startswith("msg_") and message.role == "assistant"
    assert message.model == "claude-sonnet-4-5"  # the name the client asked for
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Paris is the capital."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 4)
    assert reply.content[0].text == "Paris is the capital."  # type: ignore[union-attr]
    assert last_chat(engine).model == "scripted"
    assert last_chat(engine).sampling.max_tokens == 64


def test_request_fields_reach_the_engine(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="ok")])
    with make_client(engine, anthropic=MAP) as client:
        sdk(client).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=32,
            system=[
                {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Answer in French."},
            ],
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "first"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "answer"},
                    ],
                },
                {"role": "user", "content": "second"},
            ],
            stop_sequences=["END"],
            metadata={"user_id": "u-1"},
            thinking={"type": "enabled", "budget_tokens": 1024},
            # this SDK no longer types the sampling knobs; older SDKs and Claude Code send them
            extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 7},
        )
    request = last_chat(engine)
    assert [(m.role, m.content) for m in request.messages] == [
        (Role.SYSTEM, "Be terse.\n\nAnswer in French."),
        (Role.USER, "first"),
        (Role.ASSISTANT, "answer"),
        (Role.USER, "second"),
    ]
    sampling = request.sampling
    assert (sampling.stop, sampling.temperature, sampling.top_p, sampling.top_k) == (("END",), 0.2, 0.9, 7)


def test_stream_event_sequence_and_the_sdk_accumulator(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="a b c")]), anthropic=MAP) as client:
        raw = client.post(
            "/v1/messages",
            json={"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": USER, "stream": True},
        )
        assert raw.headers["content-type"].startswith("text/event-stream")
        events = sse_events(raw.text)
        names = [name for name, _ in events]
        assert names[:3] == ["message_start", "ping", "content_block_start"]
        assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
        assert all(data["type"] == name for name, data in events)
        deltas = [data["delta"]["text"] for name, data in events if name == "content_block_delta"]
        assert "".join(deltas) == "a b c"
        end = dict(events)["message_delta"]
        assert end["delta"]["stop_reason"] == "end_turn"
        assert end["usage"]["output_tokens"] == 3 and end["usage"]["input_tokens"] == 4

        with sdk(client).messages.stream(model="claude-sonnet-4-5", max_tokens=16, messages=USER) as stream:  # type: ignore[arg-type]
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text == "a b c"
    assert final.content[0].text == "a b c"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3 and final.usage.input_tokens == 4


def test_a_stop_sequence_is_named_as_the_stop_reason(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="one two END three")])
    with make_client(engine, anthropic=MAP) as client:
        client_sdk = sdk(client)
        whole = client_sdk.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=16,
            messages=USER,
            stop_sequences=["STOP", "END"],  # type: ignore[arg-type]
        )
        with client_sdk.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=16,
            messages=USER,
            stop_sequences=["END"],  # type: ignore[arg-type]
        ) as stream:
            streamed = stream.get_final_message()
        unmatched = client_sdk.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=16,
            messages=USER,
            stop_sequences=["NEVER"],  # type: ignore[arg-type]
        )
    for message in (whole, streamed):
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
        assert message.content[0].text == "one two "  # type: ignore[union-attr]
    assert (unmatched.stop_reason, unmatched.stop_sequence) == ("end_turn", None)


def test_tool_use_round_trip(make_client: Any) -> None:
    call = ToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Paris"}')
    engine = ScriptedEngine(
        [Reply(tool_calls=(call,)), Reply(text="It is sunny."), Reply(tool_calls=(call,))]
    )
    with make_client(engine, anthropic=MAP) as client:
        client_sdk = sdk(client)
        first = client_sdk.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "any"},
        )
        assert first.stop_reason == "tool_use"
        use = first.content[-1]
        assert use.type == "tool_use" and use.name == "get_weather" and use.input == {"city": "Paris"}
        offered = last_chat(engine)
        assert offered.tool_choice.mode is ToolChoiceMode.REQUIRED
        assert offered.tools[0].parameters == WEATHER["input_schema"]

        second = client_sdk.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            tools=[WEATHER],  # type: ignore[list-item]
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [b.model_dump() for b in first.content]},  # type: ignore[misc]
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": use.id,
                            "content": [{"type": "text", "text": "sunny"}],
                        },
                        {"type": "text", "text": "So?"},
                    ],
                },
            ],
        )
        assert second.content[0].text == "It is sunny."  # type: ignore[union-attr]
        history = last_chat(engine).messages
        assert history[1].role is Role.ASSISTANT and history[1].tool_calls[0].id == "toolu_1"
        assert json.loads(history[1].tool_calls[0].arguments) == {"city": "Paris"}
        assert (history[2].role, history[2].tool_call_id, history[2].content) == (
            Role.TOOL,
            "toolu_1",
            "sunny",
        )
        assert (history[3].role, history[3].content) == (Role.USER, "So?")

        with client_sdk.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=USER,
            tools=[WEATHER],  # type: ignore[list-item]
        ) as stream:
            streamed = stream.get_final_message()
    assert streamed.stop_reason == "tool_use"
    assert streamed.content[-1].type == "tool_use" and streamed.content[-1].input == {"city": "Paris"}


def test_count_tokens(make_client: Any) -> None:
    with make_client(anthropic=MAP) as client:
        plain = sdk(client).messages.count_tokens(model="claude-sonnet-4-5", messages=USER)  # type: ignore[arg-type]
        raw = client.post(
            "/v1/messages/count_tokens",
            json={"model": "claude-sonnet-4-5", "messages": USER, "system": "Be terse.", "tools": [WEATHER]},
        )
    assert plain.input_tokens == 4
    counted = MessageTokensCount.model_validate(raw.json(), strict=True)
    assert counted.input_tokens > plain.input_tokens  # the system prompt and the tool are counted


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (
            [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}],
            "image",
        ),
        (
            [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}],
            "document",
        ),
    ],
)
def test_unsupported_blocks_are_refused_by_name(make_client: Any, content: Any, named: str) -> None:
    with make_client(anthropic=MAP) as client, pytest.raises(anthropic.BadRequestError) as caught:
        sdk(client).messages.create(
            model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": content}]
        )
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert named in body["error"]["message"]


def test_errors_use_anthropics_shape_and_classes(make_client: Any) -> None:
    class Busy(ScriptedEngine):
        async def complete(self, request: Any) -> Any:
            from mindfu_core import Overloaded

            raise Overloaded("all slots busy", retry_after=2)

    with make_client(Busy(), anthropic=MAP, api_keys="k1") as client:
        with pytest.raises(anthropic.AuthenticationError):
            sdk(client, key="wrong").messages.create(model="claude-x", max_tokens=8, messages=USER)  # type: ignore[arg-type]
        with pytest.raises(anthropic.NotFoundError) as missing:
            sdk(client, key="k1").messages.create(model="gpt-4o", max_tokens=8, messages=USER)  # type: ignore[arg-type]
        assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        with pytest.raises(anthropic.BadRequestError) as invalid:
            sdk(client, key="k1").messages.create(model="claude-x", max_tokens=0, messages=USER)  # type: ignore[arg-type]
        assert "max_tokens" in invalid.value.body["error"]["message"]  # type: ignore[index]
        busy = client.post(
            "/v1/messages",
            json={"model": "claude-x", "max_tokens": 8, "messages": USER},
            headers={"x-api-key": "k1"},
        )
        assert busy.status_code == 529 and busy.headers["retry-after"] == "2"
        assert busy.json()["error"]["type"] == "overloaded_error"
        assert busy.json()["request_id"] == busy.headers["request-id"]
        bearer = client.post(
            "/v1/messages/count_tokens",
            json={"model": "claude-x", "messages": USER},
            headers={"Authorization": "Bearer k1"},
        )
        assert bearer.status_code == 200


def test_server_tools_are_refused(make_client: Any) -> None:
    with make_client(anthropic=MAP) as client:
        response = client.post(
            "/v1/messages",
            json={
                "model": "claude-x",
                "max_tokens": 8,
                "messages": USER,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
        )
    assert response.status_code == 400
    assert "web_search_20250305" in response.json()["error"]["message"]


def test_messages_are_logged_like_chat_completions(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="logged answer")]), anthropic=MAP) as client:
        sdk(client).messages.create(model="claude-x", max_tokens=8, messages=USER)  # type: ignore[arg-type]
        listed = logged_conversations(client, 1)
        conversation = client.get(f"/v1/conversations/{listed[0]['id']}").json()
    assert [m["content"] for m in conversation["messages"]] == ["hi there", "logged answer"]


CLAUDE_CODE = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"


@pytest.mark.parametrize("stream", [False, True])
def test_requests_claude_code_sends_are_served(make_client: Any, stream: bool) -> None:
    """Bodies captured from Claude Code 2.1.332: its default request (a system turn inside messages,
    adaptive thinking, context_management, output_config, 12 tools, max_tokens 128000) and a Bash round
    trip's follow-up (tool_use, then its tool_result)."""
    default = json.loads((CLAUDE_CODE / "default_request.json").read_text())
    follow_up = json.loads((CLAUDE_CODE / "tool_result_request.json").read_text())
    engine = ScriptedEngine([Reply(text="ok")], context_length=200_000)
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219", "x-app": "cli"}
    with make_client(engine, anthropic=MAP) as client:
        for body in (default, follow_up):
            response = client.post(
                "/v1/messages?beta=true",
                json={**body, "model": "claude-opus-5-5", "stream": stream},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            if stream:
                assert [name for name, _ in sse_events(response.text)][-1] == "message_stop"
            else:
                assert AnthropicMessage.model_validate(response.json(), strict=True).content[0].text == "ok"  # type: ignore[union-attr]
        first, second = engine.requests[-2], engine.requests[-1]
    assert isinstance(first, ChatRequest) and isinstance(second, ChatRequest)
    assert [m.role for m in first.messages] == [Role.SYSTEM, Role.USER, Role.SYSTEM]
    assert len(first.tools) == 12 and "Bash" in {t.name for t in first.tools}
    assert first.sampling.max_tokens == 128000  # the engine lowers it to what its window holds
    roles = [m.role for m in second.messages]
    assert roles == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL]
    call = second.messages[2].tool_calls[0]
    assert call.name == "Bash" and json.loads(call.arguments)["command"] == "echo hi"
    assert second.messages[3].tool_call_id == call.id and second.messages[3].content == "hi"


def test_models_list_reads_with_both_sdks(make_client: Any) -> None:
    with make_client() as client:
        listed = list(sdk(client).models.list())
        one = sdk(client).models.retrieve("scripted")
        openai_view = client.get("/v1/models").json()
    assert [m.id for m in listed] == ["scripted"] and listed[0].type == "model"
    assert one.display_name == "scripted" and one.created_at.year >= 1970
    assert openai_view["object"] == "list" and openai_view["data"][0]["object"] == "model"


class FailsMidway(ScriptedEngine):
    async def stream(self, request: Any) -> Any:
        from mindfu_core import ChatDelta, EngineFailure

        yield ChatDelta(content="partial")
        raise EngineFailure("decode failed")


def test_an_error_mid_stream_is_an_error_event(make_client: Any) -> None:
    with make_client(FailsMidway(), anthropic=MAP) as client:
        raw = client.post(
            "/v1/messages", json={"model": "claude-x", "max_tokens": 8, "messages": USER, "stream": True}
        )
        with (
            pytest.raises(anthropic.APIStatusError),
            sdk(client).messages.stream(model="claude-x", max_tokens=8, messages=USER) as stream,
        ):
            list(stream.text_stream)
    events = sse_events(raw.text)
    assert [name for name, _ in events][-1] == "error"
    error = events[-1][1]
    assert error["error"]["type"] == "api_error" and error["request_id"] in error["error"]["message"]
    assert "message_stop" not in [name for name, _ in events]


def test_claude_codes_billing_header_leaves_the_prompt_and_stays_in_the_log(make_client: Any) -> None:
    """Claude Code's first system block carries a hash that changes on every request; in the prompt it
    would make every turn's prefix new to the engine's cache. The engine never sees it, two turns that
    differ only in it send the engine the same messages, and the conversation log keeps it as sent."""
    default = json.loads((CLAUDE_CODE / "default_request.json").read_text())
    header = default["system"][0]["text"]
    assert header.startswith("x-anthropic-billing-header:")
    engine = ScriptedEngine([Reply(text="ok")], context_length=200_000)
    with make_client(engine, anthropic=MAP) as client:
        for cch in ("cch=1a2b3;", "cch=9f8e7;"):
            body = {**default, "model": "claude-opus-5-5"}
            body["system"] = [{**default["system"][0], "text": f"{header} {cch}"}, *default["system"][1:]]
            assert client.post("/v1/messages", json=body).status_code == 200
        first, second = engine.requests[-2], engine.requests[-1]
        listed = logged_conversations(client, 2)
        logged = [client.get(f"/v1/conversations/{c['id']}").json() for c in listed]
    assert isinstance(first, ChatRequest) and isinstance(second, ChatRequest)
    assert first.messages == second.messages
    assert not any("x-anthropic-billing-header" in (m.content or "") for m in first.messages)
    assert first.messages[0].content.startswith("You are a Claude agent")  # type: ignore[union-attr]
    kept = [m["content"] for c in logged for m in c["messages"] if m["role"] == "system"]
    assert any("cch=1a2b3;" in text for text in kept) and any("cch=9f8e7;" in text for text in kept)
