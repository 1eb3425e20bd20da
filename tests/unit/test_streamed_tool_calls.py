"""Tool calls streamed in pieces (the name first, then the arguments as they are generated) reach every
wire format incrementally, are put back together by each official SDK, and are logged whole."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai

from mindfu_core import ToolCall
from tests.fakes import Reply, ScriptedEngine
from tests.unit.test_anthropic_api import logged_conversations, sse_events

ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'
CALLS = (
    ToolCall(id="call_a", name="get_weather", arguments=ARGUMENTS),
    ToolCall(id="call_b", name="get_time", arguments='{"zone": "Europe/Paris"}'),
)
OPENAI_TOOLS: Any = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("get_weather", "get_time")
]
USER: Any = [{"role": "user", "content": "Weather and time in Paris?"}]


def engine() -> ScriptedEngine:
    return ScriptedEngine([Reply(tool_calls=CALLS, pieces=True)])


def test_chat_completions_stream_pieces_in_openais_shape(make_client: Any) -> None:
    with make_client(engine()) as client:
        sdk = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=client, max_retries=0)
        chunks = list(
            sdk.chat.completions.create(model="scripted", messages=USER, tools=OPENAI_TOOLS, stream=True)
        )
        whole = sdk.chat.completions.create(model="scripted", messages=USER, tools=OPENAI_TOOLS)
        logged = logged_conversations(client, 2)  # the streamed call and the whole one
        conversations = [client.get(f"/v1/conversations/{c['id']}").json() for c in logged]
    pieces = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    heads = [p for p in pieces if p.id]
    assert [(p.index, p.id, p.function.name) for p in heads] == [
        (0, "call_a", "get_weather"),
        (1, "call_b", "get_time"),
    ]  # type: ignore[union-attr]
    assert len(pieces) > 6  # the arguments came in several chunks
    assembled = {i: "".join(p.function.arguments or "" for p in pieces if p.index == i) for i in (0, 1)}  # type: ignore[union-attr]
    assert json.loads(assembled[0]) == json.loads(ARGUMENTS)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]
    calls = whole.choices[0].message.tool_calls or []
    assert [(c.id, c.function.arguments) for c in calls] == [(x.id, x.arguments) for x in CALLS]  # type: ignore[union-attr]
    for conversation in conversations:  # logged whole, however it was streamed
        assistant = conversation["messages"][-1]
        assert [c["function"]["arguments"] for c in assistant["tool_calls"]] == [x.arguments for x in CALLS]


def test_messages_stream_pieces_as_input_json_deltas(make_client: Any) -> None:
    tools: Any = [{"name": n, "input_schema": {"type": "object"}} for n in ("get_weather", "get_time")]
    body = {"model": "scripted", "max_tokens": 64, "messages": USER, "tools": tools, "stream": True}
    with make_client(engine()) as client:
        events = sse_events(client.post("/v1/messages", json=body).text)
        sdk = anthropic.Anthropic(
            base_url="http://testserver", api_key="x", http_client=client, max_retries=0
        )
        with sdk.messages.stream(model="scripted", max_tokens=64, messages=USER, tools=tools) as stream:
            final = stream.get_final_message()
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [(b["type"], b["id"], b["name"]) for b in starts] == [
        ("tool_use", "call_a", "get_weather"),
        ("tool_use", "call_b", "get_time"),
    ]
    partial = [
        d["delta"]["partial_json"] for n, d in events if n == "content_block_delta" and d["index"] == 0
    ]
    assert len(partial) > 3 and json.loads("".join(partial)) == json.loads(ARGUMENTS)
    assert [n for n, _ in events].count("content_block_stop") == 2
    assert final.stop_reason == "tool_use"
    assert [b.input for b in final.content] == [json.loads(x.arguments) for x in CALLS]  # type: ignore[union-attr]


def test_responses_stream_pieces_as_argument_deltas(make_client: Any) -> None:
    tools: Any = [
        {"type": "function", "name": n, "parameters": {"type": "object"}} for n in ("get_weather", "get_time")
    ]
    with make_client(engine()) as client:
        sdk = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=client, max_retries=0)
        with sdk.responses.stream(model="scripted", input="hi", tools=tools) as stream:
            events = list(stream)
            final = stream.get_final_response()
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(deltas) > 6
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [json.loads(e.arguments) for e in done] == [json.loads(x.arguments) for x in CALLS]
    assert [(o.call_id, o.name) for o in final.output] == [("call_a", "get_weather"), ("call_b", "get_time")]  # type: ignore[union-attr]
