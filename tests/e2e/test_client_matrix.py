"""End to end: the clients people point at MindFu, each the official package, against ``mindfu serve`` on
SmolLM2: the anthropic SDK (Messages API), the openai SDK (Responses API), LangChain's ChatOpenAI and
LlamaIndex's OpenAILike. Tool calls are asked for with a forced tool choice, which llama.cpp constrains
with a grammar, so a 135M model produces them reliably."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message as AnthropicMessage
from openai.types.responses import Response, ResponseFunctionToolCall

from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
QUESTION = "What is the capital of France? Answer in one sentence."
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("clients"), env={"MINDFU_API_KEYS": "sk-matrix"}) as running:
        yield running


# --- anthropic --------------------------------------------------------------------------------------------


@pytest.fixture
def claude(server: Server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-matrix", max_retries=0, timeout=120)


def test_anthropic_messages_create_and_stream(claude: anthropic.Anthropic, server: Server) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-5",  # mapped to the served model by MINDFU_ANTHROPIC__MODEL_MAP's default
        max_tokens=24,
        system="You answer geography questions.",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"temperature": 0},
    )
    assert isinstance(message, AnthropicMessage) and message.model == "claude-sonnet-4-5"
    assert "Paris" in message.content[0].text  # type: ignore[union-attr]
    assert message.usage.input_tokens > 10 and 0 < message.usage.output_tokens <= 24

    with claude.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=24,
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"temperature": 0},
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == final.content[0].text  # type: ignore[union-attr]
    assert "Paris" in final.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.input_tokens > 10 and final.usage.output_tokens > 0


def test_anthropic_tool_use_round_trip(claude: anthropic.Anthropic) -> None:
    tools: Any = [{"name": "get_weather", "description": "Current weather of a city", "input_schema": CITY}]
    question: Any = {"role": "user", "content": "What is the weather in Paris?"}
    with claude.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=[question],
        tools=tools,
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    use = first.content[-1]
    assert use.type == "tool_use" and use.name == "get_weather"
    assert isinstance(use.input, dict) and isinstance(use.input.get("city"), str)

    answer = claude.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=32,
        tools=tools,
        messages=[
            question,
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},  # type: ignore[misc]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 24 degrees."}],
            },
        ],
    )
    assert answer.content and answer.content[0].type in ("text", "tool_use")


def test_anthropic_count_tokens_and_errors(claude: anthropic.Anthropic, server: Server) -> None:
    counted = claude.messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": QUESTION}]
    )
    longer = claude.messages.count_tokens(
        model="claude-sonnet-4-5", system="Be terse. " * 20, messages=[{"role": "user", "content": QUESTION}]
    )
    assert 10 < counted.input_tokens < longer.input_tokens
    stranger = anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(
            model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.BadRequestError, match="image"):
        claude.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=8,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}],
                }
            ],
        )


# --- openai Responses API ---------------------------------------------------------------------------------


@pytest.fixture
def oai(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-matrix", max_retries=0, timeout=120)


def test_responses_create_and_stream(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model=MODEL, input=QUESTION, max_output_tokens=24, temperature=0)
    assert isinstance(response, Response) and "Paris" in response.output_text
    with oai.responses.stream(model=MODEL, input=QUESTION, max_output_tokens=24, temperature=0) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1 and "".join(deltas) == final.output_text
    assert "Paris" in final.output_text
    follow_up = oai.responses.create(
        model=MODEL, input="Repeat your last answer.", previous_response_id=final.id, max_output_tokens=24
    )
    assert follow_up.previous_response_id == final.id and follow_up.output_text
    read = oai.responses.retrieve(follow_up.id)  # a stored response reads back
    assert (read.output_text, read.usage) == (follow_up.output_text, follow_up.usage)
    inputs = [item.type for item in oai.responses.input_items.list(follow_up.id, order="asc")]
    assert inputs == ["message", "message", "message"]  # the question, the answer, the follow-up


def test_responses_function_call(oai: openai.OpenAI) -> None:
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": CITY,
    }
    response = oai.responses.create(
        model=MODEL, input="What is the weather in Paris?", tools=[tool], tool_choice="required"
    )
    call = response.output[-1]
    assert isinstance(call, ResponseFunctionToolCall) and call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)
    with oai.responses.stream(
        model=MODEL, input="What is the weather in Oslo?", tools=[tool], tool_choice="required"
    ) as stream:
        arguments = "".join(e.delta for e in stream if e.type == "response.function_call_arguments.delta")
        final = stream.get_final_response()
    assert isinstance(final.output[-1], ResponseFunctionToolCall)
    assert json.loads(arguments) == json.loads(final.output[-1].arguments)


# --- LangChain and LlamaIndex -----------------------------------------------------------------------------


def test_langchain_chat_openai(server: Server) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=server.base_url,
        api_key="sk-matrix",
        model=MODEL,
        temperature=0,
        max_tokens=24,
        max_retries=0,
    )  # type: ignore[call-arg]
    assert "Paris" in str(llm.invoke(QUESTION).content)
    streamed = [str(chunk.content) for chunk in llm.stream(QUESTION)]
    assert len(streamed) > 1 and "Paris" in "".join(streamed)

    @tool
    def get_weather(city: str) -> str:
        """Current weather of a city."""
        return f"Sunny in {city}"

    # a call needs more room than the short answers above: a cut-off call is no call
    bound = llm.model_copy(update={"max_tokens": 96}).bind_tools([get_weather], tool_choice="get_weather")
    calls = bound.invoke("What is the weather in Paris?").tool_calls  # type: ignore[attr-defined]
    assert calls and calls[0]["name"] == "get_weather" and isinstance(calls[0]["args"].get("city"), str)


def test_llama_index_openai_like(server: Server) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(
        model=MODEL,
        api_base=server.base_url,
        api_key="sk-matrix",
        is_chat_model=True,
        context_window=4096,
        max_tokens=24,
        temperature=0,
        max_retries=0,
    )
    messages = [ChatMessage(role="user", content=QUESTION)]
    assert "Paris" in str(llm.chat(messages).message.content)
    pieces = [r.delta or "" for r in llm.stream_chat(messages)]
    assert len(pieces) > 1 and "Paris" in "".join(pieces)


def test_everything_above_was_logged(server: Server, tmp_path: Path) -> None:
    """Each API reached the same chat service: the Messages and Responses calls are logged conversations."""
    import httpx

    listed = httpx.get(
        f"{server.base_url}/conversations",
        params={"limit": 200},
        headers={"Authorization": "Bearer sk-matrix"},
    ).json()["data"]
    assert len(listed) >= 8
