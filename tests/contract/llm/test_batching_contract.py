"""The batching part of the LLMEngine contract, for the engines that decode several requests together
(llama.cpp on a tiny GGUF and on SmolLM2 here; vLLM in its tier): requests running side by side each keep
their own grammar, stop sequences, seed and budget, and give what they give alone; cancelling one leaves the
others untouched; a long prompt arriving does not stall the streams already running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mindfu_core import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    FinishReason,
    LLMEngine,
    Message,
    ResponseFormat,
    ResponseFormatType,
    Role,
    SamplingParams,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from tests.contract.llm.test_llm_engine_contract import EngineFactory, _smollm2, _tiny, wait_idle

COLOR = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "color": {"enum": ["red", "green", "blue"]}},
    "required": ["ok", "color"],
    "additionalProperties": False,
}
PICK = ToolSpec(
    name="pick",
    description="Pick a size",
    parameters={
        "type": "object",
        "properties": {"size": {"enum": ["small", "large"]}},
        "required": ["size"],
        "additionalProperties": False,
    },
)


@pytest.fixture(
    params=[
        pytest.param(_tiny, id="llama-tiny"),
        pytest.param(_smollm2, id="llama-smollm2", marks=pytest.mark.slow),
    ]
)
async def make_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    engines: list[LLMEngine] = []
    build: Callable[..., LLMEngine] = request.param

    def factory(**kw: Any) -> LLMEngine:
        engines.append(build(tmp_path, **kw))
        return engines[-1]

    yield factory
    for engine in engines:
        await engine.aclose()


@pytest.fixture
def batch_invariant() -> bool:
    """Whether a request's output is the same alone and batched with others, to the bit: llama.cpp's is (on
    CPU, a sequence's rows are computed alike whatever shares the batch); vLLM's tier overrides this, as
    vLLM does not promise it (its kernels change with the batch's shape)."""
    return True


def ask(engine: LLMEngine, text: str, *, max_tokens: int = 24, seed: int = 1, **kw: Any) -> ChatRequest:
    sampling = SamplingParams(
        max_tokens=max_tokens, temperature=kw.pop("temperature", 0.8), seed=seed, stop=kw.pop("stop", ())
    )
    return ChatRequest(
        model=engine.model_info().id,
        messages=(Message(role=Role.USER, content=text),),
        sampling=sampling,
        **kw,
    )


def requests(engine: LLMEngine) -> list[ChatRequest]:
    """Four requests that differ in everything a sequence carries: a JSON schema, a forced tool call, a stop
    sequence and a seed of their own, and a plain one with two choices."""
    schema = ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema=COLOR)
    forced = ToolChoice(mode=ToolChoiceMode.FUNCTION, name="pick")
    return [
        ask(engine, "Give me a color as JSON.", max_tokens=60, seed=3, response_format=schema),
        ask(engine, "Pick a size.", max_tokens=60, seed=4, tools=(PICK,), tool_choice=forced),
        ask(engine, "Tell me about the sea.", seed=5, stop=("e",)),
        ChatRequest(
            model=engine.model_info().id,
            messages=(Message(role=Role.USER, content="Count to ten."),),
            sampling=SamplingParams(max_tokens=16, temperature=1.0, seed=6),
            n=2,
        ),
    ]


def outcome(result: ChatResult) -> list[tuple[str | None, list[tuple[str, str]], FinishReason | None]]:
    return [
        (
            choice.message.content,
            [(call.name, call.arguments) for call in choice.message.tool_calls],
            choice.finish_reason,
        )
        for choice in result.choices
    ]


async def test_requests_side_by_side_each_keep_their_grammar_stops_and_seed(
    make_engine: EngineFactory,
) -> None:
    engine = make_engine(slots=4)
    alone = [await engine.complete(request) for request in requests(engine)]
    together = await asyncio.gather(*(engine.complete(request) for request in requests(engine)))
    assert [outcome(r) for r in together] == [outcome(r) for r in alone]
    schema, tool, stopped, plain = together
    data = json.loads(schema.choices[0].message.content or "")
    assert set(data) == {"ok", "color"} and data["color"] in ("red", "green", "blue")
    (call,) = tool.choices[0].message.tool_calls
    assert call.name == "pick" and json.loads(call.arguments)["size"] in ("small", "large")
    assert "e" not in (stopped.choices[0].message.content or "")
    assert len(plain.choices) == 2 and plain.usage.completion_tokens <= 32
    await wait_idle(engine)


async def test_cancelling_one_stream_leaves_the_others_untouched(
    make_engine: EngineFactory, batch_invariant: bool
) -> None:
    engine = make_engine(slots=3)
    request = ask(engine, "Write a long story about a dragon.", max_tokens=32, temperature=0.0)
    alone = outcome(await engine.complete(request))
    kept = [asyncio.ensure_future(engine.complete(request)) for _ in range(2)]
    doomed = engine.stream(request)
    async for delta in doomed:
        if delta.content:
            break
    await doomed.aclose()  # type: ignore[attr-defined]
    results = await asyncio.gather(*kept)
    if batch_invariant:
        assert [outcome(result) for result in results] == [alone, alone]
    else:  # each finished on its own terms: the budget or the end of its text
        assert all(r.choices[0].message.content and r.usage.completion_tokens <= 32 for r in results)
        assert all(r.choices[0].finish_reason in (FinishReason.STOP, FinishReason.LENGTH) for r in results)
    await wait_idle(engine)


async def test_a_long_prompt_does_not_stall_the_streams_already_running(make_engine: EngineFactory) -> None:
    """Two streams decode while a third request's long prompt is computed in chunks: they keep producing
    tokens between its chunks, instead of waiting for its whole prompt."""
    engine = make_engine(slots=3, batch_size=32)
    runners = [engine.stream(ask(engine, "Write a long story.", max_tokens=400, seed=s)) for s in (1, 2)]
    produced = [0, 0]
    long_started = asyncio.Event()
    first_of_long: list[int] = []

    async def run(index: int, stream: AsyncIterator[ChatDelta]) -> None:
        async for delta in stream:
            if delta.content:
                produced[index] += 1
                if produced[index] == 1 and all(produced):
                    long_started.set()

    tasks = [asyncio.ensure_future(run(i, s)) for i, s in enumerate(runners)]
    await asyncio.wait_for(long_started.wait(), 60)
    text = " ".join(f"Line {i} of the log says the build passed." for i in range(60))
    long = engine.stream(ask(engine, text, max_tokens=4))
    before = sum(produced)
    async for delta in long:
        if delta.content or delta.finish_reason:
            first_of_long.append(sum(produced) - before)
            break
    await long.aclose()  # type: ignore[attr-defined]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for stream in runners:
        await stream.aclose()  # type: ignore[attr-defined]
    prompt = await engine.count_tokens(text)
    # the prompt takes at least prompt / 32 steps; each of them also decodes both running streams
    assert first_of_long[0] >= prompt // 64, (first_of_long, prompt, produced)
    await wait_idle(engine)
