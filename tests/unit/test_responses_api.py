"""The OpenAI Responses API over the scripted engine, read with the official openai SDK's types."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from openai.types.responses import Response, ResponseFunctionToolCall, ResponseOutputMessage

from mindfu_core import ChatRequest, Role, ToolCall, ToolChoiceMode
from tests.fakes import Reply, ScriptedEngine
from tests.unit.test_anthropic_api import logged_conversations

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sdk(client: Any, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0)


def last_chat(engine: ScriptedEngine) -> ChatRequest:
    request = engine.requests[-1]
    assert isinstance(request, ChatRequest)
    return request


def test_text_response_parses_strictly(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="Paris is the capital.")])
    with make_client(engine) as client:
        raw = client.post(
            "/v1/responses",
            json={"model": "scripted", "input": "Capital of France?", "instructions": "Be terse."},
        )
        assert raw.status_code == 200
        response = Response.model_validate(raw.json(), strict=True)
        via_sdk = sdk(client).responses.create(model="scripted", input="Capital of France?")
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == "Paris is the capital."
    assert isinstance(response.output[0], ResponseOutputMessage)
    assert response.usage is not None and response.usage.output_tokens == 4
    assert via_sdk.output_text == "Paris is the capital."
    assert [(m.role, m.content) for m in last_chat(engine).messages] == [(Role.USER, "Capital of France?")]


def test_items_and_function_calls(make_client: Any) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    engine = ScriptedEngine([Reply(tool_calls=(call,)), Reply(text="It is sunny.")])
    with make_client(engine) as client:
        client_sdk = sdk(client)
        first = client_sdk.responses.create(
            model="scripted",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice="required",
        )
        fc = first.output[0]
        assert isinstance(fc, ResponseFunctionToolCall)
        assert (fc.name, json.loads(fc.arguments), fc.call_id) == ("get_weather", {"city": "Paris"}, "call_1")
        assert last_chat(engine).tool_choice.mode is ToolChoiceMode.REQUIRED
        second = client_sdk.responses.create(
            model="scripted",
            tools=[WEATHER],  # type: ignore[list-item]
            input=[
                {"role": "user", "content": "Weather in Paris?"},
                fc.model_dump(exclude_none=True),  # type: ignore[list-item]
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            ],
        )
    assert second.output_text == "It is sunny."
    history = last_chat(engine).messages
    assert history[1].role is Role.ASSISTANT and history[1].tool_calls[0].id == "call_1"
    assert (history[2].role, history[2].tool_call_id, history[2].content) == (Role.TOOL, "call_1", "sunny")


def test_stream_events_and_the_sdk_accumulator(make_client: Any) -> None:
    with (
        make_client(ScriptedEngine([Reply(text="a b c")])) as client,
        sdk(client).responses.stream(model="scripted", input="hi") as stream,
    ):
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds.count("response.output_text.delta") == 3
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text == "a b c" and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens == 3


def test_streamed_function_call(make_client: Any) -> None:
    call = ToolCall(id="call_9", name="get_weather", arguments='{"city": "Oslo"}')
    with (
        make_client(ScriptedEngine([Reply(tool_calls=(call,))])) as client,
        sdk(client).responses.stream(model="scripted", input="hi", tools=[WEATHER]) as stream,  # type: ignore[list-item]
    ):
        arguments = "".join(e.delta for e in stream if e.type == "response.function_call_arguments.delta")
        final = stream.get_final_response()
    assert json.loads(arguments) == {"city": "Oslo"}
    item = final.output[0]
    assert isinstance(item, ResponseFunctionToolCall) and item.call_id == "call_9"


def test_previous_response_id_continues_the_logged_conversation(make_client: Any) -> None:
    engine = ScriptedEngine([Reply(text="Hello Ada."), Reply(text="Your name is Ada.")])
    with make_client(engine) as client:
        client_sdk = sdk(client)
        first = client_sdk.responses.create(model="scripted", input="My name is Ada.")
        second = client_sdk.responses.create(
            model="scripted", input="What is my name?", previous_response_id=first.id
        )
        assert second.previous_response_id == first.id
        history = last_chat(engine).messages
        assert [(m.role, m.content) for m in history] == [
            (Role.USER, "My name is Ada."),
            (Role.ASSISTANT, "Hello Ada."),
            (Role.USER, "What is my name?"),
        ]
        logged_conversations(client, 1)  # both turns in one logged conversation

        unstored = client_sdk.responses.create(model="scripted", input="secret", store=False)
        with pytest.raises(openai.NotFoundError) as missing:
            client_sdk.responses.create(model="scripted", input="again", previous_response_id=unstored.id)
        assert missing.value.code == "response_not_found"
        time.sleep(1.5)  # past the log writer's linger
        logged = logged_conversations(client, 1)  # store: false was not logged
        assert logged[0]["message_count"] == 4


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input_image",
        ),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "web_search"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "item_reference"),
    ],
)
def test_unsupported_inputs_are_refused_by_name(make_client: Any, body: dict[str, Any], named: str) -> None:
    with make_client() as client:
        response = client.post("/v1/responses", json={"model": "scripted", **body})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and named in error["message"]


def test_an_error_mid_stream_is_an_error_event(make_client: Any) -> None:
    from tests.unit.test_anthropic_api import FailsMidway

    with make_client(FailsMidway()) as client:
        raw = client.post("/v1/responses", json={"model": "scripted", "input": "hi", "stream": True})
        with sdk(client).responses.stream(model="scripted", input="hi") as stream:
            seen = list(stream)
    assert seen[-1].type == "error" and seen[-1].code == "engine_failure"  # a ResponseErrorEvent
    kinds = [line.split(": ", 1)[1] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert kinds[-1] == "error" and "response.completed" not in kinds
    assert "response.output_text.delta" in kinds  # what came before the failure was sent
