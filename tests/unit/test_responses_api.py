"""The OpenAI Responses API over the scripted engine, read with the official openai SDK's types."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from openai.types.responses import (
    Response,
    ResponseFunctionToolCall,
    ResponseItemList,
    ResponseOutputMessage,
)

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
        ({"input": "hi", "tools": [{"type": "custom", "name": "apply_patch"}]}, "custom"),
        ({"input": "hi", "tools": [{"type": "namespace", "tools": [WEATHER]}]}, "namespace"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "item_reference"),
    ],
)
def test_unsupported_inputs_are_refused_by_name(make_client: Any, body: dict[str, Any], named: str) -> None:
    with make_client() as client:
        response = client.post("/v1/responses", json={"model": "scripted", **body})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and named in error["message"]


def test_namespaced_functions_and_hosted_tools_as_codex_sends_them(make_client: Any) -> None:
    agents = {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "Sub-agents.",
        "tools": [{**WEATHER, "name": "spawn_agent"}, {**WEATHER, "name": "close_agent"}],
    }
    tools = [WEATHER, agents, {"type": "web_search", "external_web_access": False}]
    call = ToolCall(id="call_9", name="multi_agent_v1.spawn_agent", arguments='{"city": "Oslo"}')
    engine = ScriptedEngine([Reply(tool_calls=(call,)), Reply(tool_calls=(call,)), Reply(text="Spawned.")])
    with make_client(engine) as client:
        client_sdk = sdk(client)
        first = client_sdk.responses.create(model="scripted", input="Spawn one.", tools=tools)  # type: ignore[arg-type]
        offered = last_chat(engine).tools
        # the hosted web search is not offered; the namespace's functions are, by qualified name
        assert [t.name for t in offered] == [
            "get_weather",
            "multi_agent_v1.spawn_agent",
            "multi_agent_v1.close_agent",
        ]
        fc = first.output[0]
        assert isinstance(fc, ResponseFunctionToolCall)
        assert (fc.namespace, fc.name, fc.call_id) == ("multi_agent_v1", "spawn_agent", "call_9")
        assert [t["type"] for t in first.model_dump()["tools"]] == ["function", "namespace", "web_search"]
        with client_sdk.responses.stream(model="scripted", input="Again.", tools=tools) as stream:  # type: ignore[arg-type]
            streamed = stream.get_final_response().output[0]
        assert isinstance(streamed, ResponseFunctionToolCall) and streamed.namespace == "multi_agent_v1"
        back = fc.model_dump(exclude_none=True)  # the call sent back, as Codex does, then its output
        client_sdk.responses.create(
            model="scripted",
            input=[back, {"type": "function_call_output", "call_id": "call_9", "output": "ok"}],  # type: ignore[list-item]
            tools=tools,  # type: ignore[arg-type]
        )
    history = last_chat(engine).messages
    assert history[0].tool_calls == (call,) and history[1].role is Role.TOOL


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


def test_a_stored_response_reads_back_as_it_was_created(make_client: Any) -> None:
    call = ToolCall(id="call_7", name="get_weather", arguments='{"city": "Rome"}')
    engine = ScriptedEngine([Reply(tool_calls=(call,)), Reply(text="Sunny in Rome.")])
    with make_client(engine) as client:
        client_sdk = sdk(client)
        created = client_sdk.responses.create(
            model="scripted",
            input="Weather in Rome?",
            tools=[WEATHER],  # type: ignore[list-item]
            temperature=0.25,
            max_output_tokens=40,
        )
        # read at once: the log writer is still lingering, so this waits for it to deliver
        raw = client.get(f"/v1/responses/{created.id}")
        assert raw.status_code == 200, raw.text
        read = Response.model_validate(raw.json(), strict=True)
        via_sdk = client_sdk.responses.retrieve(created.id)
        with client_sdk.responses.stream(model="scripted", input="And now?") as stream:
            streamed = stream.get_final_response()
        streamed_read = client_sdk.responses.retrieve(streamed.id)
    assert read.model_dump(exclude={"created_at"}) == via_sdk.model_dump(exclude={"created_at"})
    assert read.output == created.output  # the same items with the same ids
    assert isinstance(read.output[0], ResponseFunctionToolCall) and read.output[0].call_id == "call_7"
    assert read.usage == created.usage and read.status == "completed" and read.model == "scripted"
    assert (read.temperature, read.max_output_tokens) == (0.25, 40)
    assert [tool.name for tool in read.tools] == ["get_weather"]  # type: ignore[union-attr]
    assert read.tool_choice == "auto"
    assert abs(read.created_at - created.created_at) <= 1
    # a streamed response reads back with the ids its stream gave its items
    assert [(i.id, i.type) for i in streamed_read.output] == [(i.id, i.type) for i in streamed.output]
    assert streamed_read.output_text == streamed.output_text == "Sunny in Rome."


def test_input_items_list_the_request_in_pages(make_client: Any) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    engine = ScriptedEngine([Reply(text="It is sunny."), Reply(text="You asked about Paris.")])
    with make_client(engine) as client:
        client_sdk = sdk(client)
        first = client_sdk.responses.create(
            model="scripted",
            instructions="Be brief.",
            tools=[WEATHER],  # type: ignore[list-item]
            input=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": call.name,
                    "arguments": call.arguments,
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            ],
        )
        raw = client.get(f"/v1/responses/{first.id}/input_items", params={"order": "asc"})
        assert raw.status_code == 200, raw.text
        listed = ResponseItemList.model_validate(raw.json(), strict=True)
        newest_first = [item.id for item in client_sdk.responses.input_items.list(first.id)]
        page = client_sdk.responses.input_items.list(first.id, order="asc", limit=2)
        rest = client_sdk.responses.input_items.list(first.id, order="asc", after=page.data[-1].id)
        second = client_sdk.responses.create(
            model="scripted", input="What did I ask?", previous_response_id=first.id
        )
        continued = client_sdk.responses.input_items.list(second.id, order="asc")
        unknown_after = client.get(f"/v1/responses/{first.id}/input_items", params={"after": "msg_nope"})
    kinds = [(item.type, getattr(item, "role", None)) for item in listed.data]
    assert kinds == [
        ("message", "system"),
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
    ]
    assert listed.data[1].content[0].text == "Weather in Paris?"  # type: ignore[union-attr]
    assert listed.data[3].output == "sunny"  # type: ignore[union-attr]
    assert newest_first == [item.id for item in reversed(listed.data)]
    assert page.has_more and [i.id for i in page.data + rest.data] == [i.id for i in listed.data]
    assert not rest.has_more
    # a continued response's input is the conversation it continued, then its own input
    texts = [getattr(item, "content", None) and item.content[0].text for item in continued.data]  # type: ignore[union-attr]
    assert texts[-2:] == ["It is sunny.", "What did I ask?"] and len(continued.data) == 6
    assert unknown_after.status_code == 400 and unknown_after.json()["error"]["param"] == "after"


def test_responses_that_were_not_stored_are_not_found(make_client: Any) -> None:
    with make_client(ScriptedEngine([Reply(text="secret")])) as client:
        client_sdk = sdk(client)
        unstored = client_sdk.responses.create(model="scripted", input="secret", store=False)
        with pytest.raises(openai.NotFoundError) as missing:
            client_sdk.responses.retrieve(unstored.id)
        malformed = client.get("/v1/responses/chatcmpl-123")
        items = client.get(f"/v1/responses/{unstored.id}/input_items")
    assert missing.value.code == "response_not_found"
    assert missing.value.body["param"] == "response_id"  # type: ignore[index]
    assert malformed.status_code == 404 and malformed.json()["error"]["code"] == "response_not_found"
    assert items.status_code == 404


def test_a_failed_response_reads_back_as_failed(make_client: Any) -> None:
    from tests.unit.test_anthropic_api import FailsMidway

    with make_client(FailsMidway()) as client:
        with sdk(client).responses.stream(model="scripted", input="hi") as stream:
            created = next(e for e in stream if e.type == "response.created").response
            list(stream)
        deadline = time.monotonic() + 10
        while (raw := client.get(f"/v1/responses/{created.id}")).status_code == 404:
            assert time.monotonic() < deadline  # an error is logged in the background
            time.sleep(0.05)
    read = Response.model_validate(raw.json(), strict=True)
    assert read.status == "failed" and read.error is not None
    assert "EngineFailure" in read.error.message
