"""Devstral's path on a stand-in: VllmEngine with ``tokenizer_mode="mistral"`` and the ``mistral`` tool
parser over a tiny Mistral model whose Tekken tokenizer is built here (tests/fixtures/tiny_mistral.py).

The prompt is mistral_common's own rendering (tools in ``[AVAILABLE_TOOLS]``, calls and results with
ids shortened to the nine characters it takes), calls the model writes natively (``[TOOL_CALLS]name
[ARGS]{...}``) come back as tool calls, and a tool parser whose request hook fails (as vLLM 0.32's
mistral parser does with mistral-common 1.13) does not fail the chat. (A forced call is not tested here:
under a JSON grammar the random weights write spaces until the token limit.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from mindfu_adapters.llm.vllm_engine import VllmConfig, VllmEngine
from mindfu_adapters.llm.vllm_wire import ParsedToolCalls
from mindfu_core import ChatRequest, FinishReason, Message, Role, SamplingParams
from mindfu_core.domain.chat import (
    ChatDelta,
    ToolCall,
    ToolCallAssembler,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from tests.fixtures.tiny_mistral import write_tiny_mistral

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
MODEL = "devstral-stand-in"
WEATHER = ToolSpec(
    name="get_weather",
    description="Weather of a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]}},
        "required": ["city"],
    },
)
LONG_ID = "call_0123456789abcdef01234567"  # an OpenAI-style id: mistral_common takes nine characters
HISTORY = (
    Message(role=Role.SYSTEM, content="You are terse."),
    Message(role=Role.USER, content="Weather in Paris?"),
    Message(
        role=Role.ASSISTANT,
        tool_calls=(ToolCall(id=LONG_ID, name="get_weather", arguments='{"city": "Paris"}'),),
    ),
    Message(role=Role.TOOL, tool_call_id=LONG_ID, content="sunny, 21C"),
    Message(role=Role.USER, content="And Rome?"),
)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_mistral(tmp_path_factory.mktemp("tiny-mistral"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(stand_in: Path) -> AsyncIterator[VllmEngine]:
    config = VllmConfig(
        model=str(stand_in),
        model_id=MODEL,
        context_length=1024,
        dtype="float32",
        tokenizer_mode="mistral",
        tool_call_parser="mistral",
        slots=2,
        max_queue=4,
    )
    engine = await asyncio.to_thread(VllmEngine, config)
    await engine.start()
    yield engine
    await engine.aclose()


def ask(messages: tuple[Message, ...], **kw: Any) -> ChatRequest:
    sampling = SamplingParams(max_tokens=kw.pop("max_tokens", 8), temperature=0.0)
    return ChatRequest(model=MODEL, messages=messages, sampling=sampling, **kw)


async def run(engine: VllmEngine, request: ChatRequest) -> list[ChatDelta]:
    return [delta async for delta in engine.stream(request)]


def finish(deltas: list[ChatDelta]) -> FinishReason | None:
    return next((d.finish_reason for d in reversed(deltas) if d.finish_reason is not None), None)


def mistral_common_count(stand_in: Path, with_tools: bool) -> int:
    """How many tokens mistral_common itself renders HISTORY into (ids shortened as vLLM's server does)."""
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    short = "a0123456z"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": short, "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": short, "content": "sunny, 21C"},
        {"role": "user", "content": "And Rome?"},
    ]
    tools = [{"type": "function", "function": {"name": WEATHER.name, "description": WEATHER.description,
                                                "parameters": WEATHER.parameters}}]  # fmt: skip
    request = ChatCompletionRequest.model_validate(
        {"messages": messages, **({"tools": tools} if with_tools else {})}
    )
    tokenizer = MistralTokenizer.from_file(str(stand_in / "tekken.json"))
    return len(tokenizer.encode_chat_completion(request).tokens)


async def test_a_tool_conversation_is_rendered_by_mistral_common_and_answered(
    engine: VllmEngine, stand_in: Path
) -> None:
    assert await engine.count_tokens(HISTORY, (WEATHER,)) == mistral_common_count(stand_in, True)
    assert await engine.count_tokens(HISTORY, ()) == mistral_common_count(stand_in, False)
    for choice in (ToolChoice(mode=ToolChoiceMode.AUTO), ToolChoice(mode=ToolChoiceMode.NONE)):
        deltas = await run(engine, ask(HISTORY, tools=(WEATHER,), tool_choice=choice))
        assert finish(deltas) in (FinishReason.LENGTH, FinishReason.STOP)
        assert deltas[-1].usage is not None and deltas[-1].usage.prompt_tokens == mistral_common_count(
            stand_in, choice.mode is ToolChoiceMode.AUTO
        )
    plain = await run(engine, ask((Message(role=Role.USER, content="hi"),)))
    assert "".join(d.content for d in plain) and plain[-1].usage is not None
    assert plain[-1].usage.completion_tokens == 8


async def test_the_mistral_parser_reads_calls_in_devstrals_own_format(engine: VllmEngine) -> None:
    prepared = await asyncio.to_thread(engine._prepare, ask(HISTORY, tools=(WEATHER,)))
    request = prepared.parser_request
    assert request is not None
    reader = engine._reader(0, prepared)
    assert isinstance(reader, ParsedToolCalls)
    tekken = engine._tokenizer.tokenizer  # mistral_common's Tekkenizer
    ids = [
        tekken.get_special_token("[TOOL_CALLS]"),
        *tekken.encode("get_weather", False, False),
        tekken.get_special_token("[ARGS]"),
        *tekken.encode('{"city": "Rome"}', False, False),
    ]
    deltas = []
    for token in ids:  # as vLLM detokenizes them, with the parser's skip_special_tokens
        piece = engine._tokenizer.convert_tokens_to_string(
            engine._tokenizer.convert_ids_to_tokens([token], skip_special_tokens=request.skip_special_tokens)
        )
        delta = reader.feed(piece, [token], ())
        if delta is not None:
            deltas.append(delta)
    deltas.extend(reader.finish(FinishReason.STOP))
    assembler = ToolCallAssembler()
    for delta in deltas:
        assembler.add(delta)
    (call,) = assembler.calls()
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Rome"}
    assert finish(deltas) is FinishReason.TOOL_CALLS
    assert not "".join(d.content for d in deltas).strip()


async def test_text_that_looks_like_reasoning_is_kept(engine: VllmEngine) -> None:
    """Without a [THINK] token, vLLM's mistral parser takes literal <think> tags for reasoning markers and
    splits what follows off as reasoning: MindFu keeps that text in the answer (the tags themselves the
    parser consumes)."""
    prepared = await asyncio.to_thread(engine._prepare, ask(HISTORY, tools=(WEATHER,)))
    reader = engine._reader(0, prepared)
    said = "Use <think> tags like <think>x</think> in HTML."
    deltas = [reader.feed(char, [], ()) for char in said]
    deltas += reader.finish(FinishReason.STOP)
    assert "".join(d.content for d in deltas if d is not None) == "Use  tags like x in HTML."


async def test_a_failing_parser_request_hook_does_not_fail_the_chat(
    engine: VllmEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM 0.32's mistral parser with mistral-common 1.13 raises TypeError in ``adjust_request``."""
    base = engine._parser_class

    class Broken(base):  # type: ignore[misc, valid-type]
        def adjust_request(self, request: Any) -> Any:
            raise TypeError("get_lark_from_jinja() missing 1 required positional argument")

    monkeypatch.setattr(engine, "_parser_class", Broken)
    deltas = await run(engine, ask(HISTORY, tools=(WEATHER,)))
    assert finish(deltas) in (FinishReason.LENGTH, FinishReason.STOP)
    prepared = await asyncio.to_thread(engine._prepare, ask(HISTORY, tools=(WEATHER,)))
    assert prepared.parser_request.skip_special_tokens is False  # the calls' tokens still reach the parser
