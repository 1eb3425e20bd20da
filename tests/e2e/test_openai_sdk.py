"""End to end: ``mindfu serve`` on SmolLM2 in a subprocess, used through the official openai SDK; every test
runs twice: against the single-process server, and against a gateway talking gRPC to a separate core."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


TOPOLOGIES = ["in-process", "gateway"]


@pytest.fixture(scope="module", params=TOPOLOGIES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("sdk"), topology=request.param) as running:
        yield running


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0, timeout=120)


def test_chat_answers_a_factual_question(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=24, temperature=0)  # type: ignore[arg-type]
    assert isinstance(reply, ChatCompletion)
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.model == MODEL
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens > 10
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_chat(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "Paris" in "".join(pieces)
    assert len(pieces) > 3
    assert chunks[-1].usage is not None
    # one chunk per token for this ASCII answer; the end-of-text token is not a completion token
    assert chunks[-1].usage.completion_tokens == len(pieces)
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        max_tokens=64,
        temperature=0,
    )
    assert first.choices[0].finish_reason == "tool_calls"
    calls = first.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(calls[0].function.arguments)  # type: ignore[union-attr]
    assert isinstance(arguments.get("city"), str)
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append(
        {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temperature_c": 21, "sky": "sunny"}'}
    )
    final = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="none",
        max_tokens=48,
        temperature=0,
    )
    assert final.choices[0].message.tool_calls is None
    assert final.choices[0].message.content
    assert final.choices[0].finish_reason in ("stop", "length")


def test_named_tool_choice_streams_the_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=64,
        temperature=0,
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert calls and calls[0].function is not None and calls[0].function.name == "get_weather"
    assert calls[0].id and all(tc.index == 0 and tc.id is None for tc in calls[1:])
    assert len(calls) > 2  # the arguments stream as the model writes them
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function is not None)
    assert isinstance(json.loads(arguments), dict)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_json_schema_output_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Invent a person and give their name and age."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
        max_tokens=64,
        temperature=0,
    )
    data = json.loads(reply.choices[0].message.content or "")
    jsonschema.validate(data, schema)


def test_json_object_output_parses(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        response_format={"type": "json_object"},
        max_tokens=64,
        temperature=0,
    )
    content = reply.choices[0].message.content or ""
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content), dict)
    else:
        assert content.lstrip().startswith("{")


def test_text_completion_with_stop(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=MODEL, prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=["8"]
    )
    assert "8" not in reply.choices[0].text
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_error_cases_raise_the_matching_sdk_exceptions(client: openai.OpenAI, server: Server) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "lorem ipsum dolor " * 3000}],
        )
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=QUESTION, temperature="warm")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=-5)  # type: ignore[arg-type]
    bad_json = httpx.post(
        f"{server.base_url}/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    assert server.ready()["status"] == "ready"


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_api_keys_guard_everything_but_health(tmp_path: Path, topology: str) -> None:
    env = {"MINDFU_API_KEYS": "sk-one,sk-two"}
    with running_server(tmp_path, env=env, topology=topology) as guarded:
        assert httpx.get(f"{guarded.url}/health").status_code == 200
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=guarded.base_url, api_key="sk-wrong", max_retries=0).models.list()
        assert openai.OpenAI(base_url=guarded.base_url, api_key="sk-two").models.list().data[0].id == MODEL
