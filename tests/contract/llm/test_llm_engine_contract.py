"""The LLMEngine contract, run against every adapter: the scripted fake, llama.cpp on a tiny generated GGUF,
llama.cpp on SmolLM2 for real text, and the OpenAI upstream engine in front of a real llama_cpp.server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mindfu_adapters.llm.backends import default_model_path
from mindfu_adapters.llm.llama_cpp import LlamaCppConfig, LlamaCppEngine
from mindfu_adapters.llm.openai_http import OpenAIUpstreamEngine, UpstreamConfig
from mindfu_core import (
    ChatDelta,
    ChatRequest,
    ContextLengthExceeded,
    FinishReason,
    LLMEngine,
    Message,
    Overloaded,
    Role,
    SamplingParams,
    TextRequest,
)
from tests.fakes import Reply, ScriptedEngine
from tests.fixtures.tiny_gguf import write_tiny_gguf
from tests.fixtures.upstream import llama_cpp_server

EngineFactory = Callable[..., LLMEngine]
LONG = " ".join(f"word{i}" for i in range(400))


def _scripted(tmp_path: Path, **kw: Any) -> LLMEngine:
    return ScriptedEngine([Reply(text=LONG)], token_delay=0.001, context_length=1024, **kw)


def _tiny(tmp_path: Path, *, slots: int = 1, max_queue: int = 4, **kw: Any) -> LLMEngine:
    path = write_tiny_gguf(tmp_path / "tiny.gguf", context_length=4096)
    config = LlamaCppConfig(
        model_path=path,
        model_id="tiny",
        context_length=4096,
        slots=slots,
        max_queue=max_queue,
        threads=1,
        clamp_max_tokens=False,  # the contract's strict reading of max_tokens
        **kw,
    )
    return LlamaCppEngine(config)


def _smollm2(tmp_path: Path, *, slots: int = 1, max_queue: int = 4, **kw: Any) -> LLMEngine:
    config = LlamaCppConfig(
        model_path=default_model_path(),
        model_id="smollm2",
        slots=slots,
        max_queue=max_queue,
        clamp_max_tokens=False,
        **{"context_length": 1024, **kw},
    )
    return LlamaCppEngine(config)


def _upstream(tmp_path: Path, *, url: str, slots: int = 1, max_queue: int = 4) -> LLMEngine:
    config = UpstreamConfig(
        base_url=url,
        model_id="upstream",
        upstream_model="smollm2",
        context_length=1024,
        slots=slots,
        max_queue=max_queue,
        retries=0,
        clamp_max_tokens=False,
    )
    return OpenAIUpstreamEngine(config)


@pytest.fixture(scope="module")
def upstream_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on SmolLM2, for the upstream engine."""
    log = tmp_path_factory.mktemp("upstream") / "llama_cpp_server.log"
    with llama_cpp_server(default_model_path(), alias="smollm2", n_ctx=1024, log=log) as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param(_scripted, id="scripted"),
        pytest.param(_tiny, id="llama-tiny"),
        pytest.param(_smollm2, id="llama-smollm2", marks=pytest.mark.slow),
        pytest.param(_upstream, id="openai-upstream", marks=pytest.mark.slow),
    ]
)
async def make_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    engines: list[LLMEngine] = []
    extra: dict[str, Any] = {}
    if request.param is _upstream:
        extra["url"] = request.getfixturevalue("upstream_url")

    def factory(**kw: Any) -> LLMEngine:
        engine: LLMEngine = request.param(tmp_path, **extra, **kw)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.aclose()


def chat(engine: LLMEngine, text: str = "Write a long story about a dragon.", **kw: Any) -> ChatRequest:
    sampling = SamplingParams(**{"max_tokens": 8, "temperature": 0.0, "seed": 1, **kw.pop("sampling", {})})
    return ChatRequest(
        model=engine.model_info().id,
        messages=(Message(role=Role.USER, content=text),),
        sampling=sampling,
        **kw,
    )


async def first_output(stream: AsyncIterator[ChatDelta]) -> ChatDelta:
    """The first delta with output (a stream may open with an empty one when its request is accepted)."""
    async for delta in stream:
        if delta.content or delta.tool_calls or delta.tool_call_deltas or delta.finish_reason:
            return delta
    raise AssertionError("the stream ended without output")


async def wait_idle(engine: LLMEngine, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while engine.stats().active:
        assert asyncio.get_running_loop().time() < deadline, "engine slot was not freed"
        await asyncio.sleep(0.01)


async def test_model_info(make_engine: EngineFactory) -> None:
    engine = make_engine()
    info = engine.model_info()
    assert info.id
    assert info.context_length > 0
    assert isinstance(engine, LLMEngine)
    assert engine.stats().ready


async def test_complete_respects_max_tokens_and_reports_usage(make_engine: EngineFactory) -> None:
    engine = make_engine()
    result = await engine.complete(chat(engine, sampling={"max_tokens": 3}))
    (choice,) = result.choices
    assert choice.message.role is Role.ASSISTANT
    assert choice.message.content
    assert choice.finish_reason is FinishReason.LENGTH
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= 3


async def test_stream_has_one_finish_per_choice_and_usage_last(make_engine: EngineFactory) -> None:
    engine = make_engine()
    deltas = [d async for d in engine.stream(chat(engine, n=2))]
    assert "".join(d.content for d in deltas if d.index == 0)
    assert "".join(d.content for d in deltas if d.index == 1)
    finishes = [(d.index, d.finish_reason) for d in deltas if d.finish_reason]
    assert sorted(i for i, _ in finishes) == [0, 1]
    usage = deltas[-1].usage
    assert usage is not None and [d for d in deltas if d.usage] == [deltas[-1]]
    assert 0 < usage.completion_tokens <= 16
    assert engine.stats().requests_total >= 1


async def test_text_requests(make_engine: EngineFactory) -> None:
    engine = make_engine()
    result = await engine.complete(
        TextRequest(
            model=engine.model_info().id, prompt="Once upon a time", sampling=SamplingParams(max_tokens=4)
        )
    )
    assert result.choices[0].message.content
    assert result.usage.completion_tokens <= 4


async def test_count_tokens_grows_with_the_text(make_engine: EngineFactory) -> None:
    engine = make_engine()
    short = await engine.count_tokens("hello world")
    longer = await engine.count_tokens("hello world " * 20)
    assert 0 < short < longer
    assert await engine.count_tokens([Message(role=Role.USER, content="hello world")]) > 0


async def test_too_long_prompt_is_context_length_exceeded(make_engine: EngineFactory) -> None:
    engine = make_engine()
    too_long = "lorem ipsum " * engine.model_info().context_length
    with pytest.raises(ContextLengthExceeded):
        await engine.complete(chat(engine, too_long))
    with pytest.raises(ContextLengthExceeded):
        await engine.complete(chat(engine, "hi", sampling={"max_tokens": engine.model_info().context_length}))


async def test_stopping_iteration_stops_generation_at_once(make_engine: EngineFactory) -> None:
    engine = make_engine()
    stream = engine.stream(chat(engine, sampling={"max_tokens": 300, "temperature": 1.0}))
    assert aiter(stream) is stream
    await first_output(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    at_close = engine.stats().tokens_generated_total
    await wait_idle(engine)
    assert engine.stats().tokens_generated_total - at_close <= 2
    assert at_close < 300
    result = await asyncio.wait_for(engine.complete(chat(engine)), 30)
    assert result.choices[0].message.content


async def test_cancelling_complete_frees_the_engine(make_engine: EngineFactory) -> None:
    engine = make_engine()
    task = asyncio.create_task(
        engine.complete(chat(engine, sampling={"max_tokens": 300, "temperature": 1.0}))
    )
    while engine.stats().tokens_generated_total == 0:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(engine)
    assert engine.stats().tokens_generated_total < 300


async def test_full_queue_is_overloaded(make_engine: EngineFactory) -> None:
    engine = make_engine(slots=1, max_queue=0)
    busy = engine.stream(chat(engine, sampling={"max_tokens": 200, "temperature": 1.0}))
    await first_output(busy)
    with pytest.raises(Overloaded):
        await engine.complete(chat(engine))
    with pytest.raises(Overloaded):  # before the stream yields anything: an edge answers 429, not a stream
        await anext(engine.stream(chat(engine)))
    await busy.aclose()  # type: ignore[attr-defined]
    await wait_idle(engine)
    assert (await engine.complete(chat(engine))).choices


async def test_a_stream_opens_before_its_request_gets_a_slot(make_engine: EngineFactory) -> None:
    """An accepted request says so at once with an empty delta, while it waits for a slot and while its
    prompt is computed: an edge sends its response headers and first event then (agents give up on a
    server that sends no headers for minutes)."""
    engine = make_engine(slots=1, max_queue=4)
    busy = engine.stream(chat(engine, sampling={"max_tokens": 200, "temperature": 1.0}))
    await first_output(busy)
    waiting = engine.stream(chat(engine, sampling={"max_tokens": 3}))
    opened = await asyncio.wait_for(anext(waiting), 10)
    assert not (opened.content or opened.tool_calls or opened.finish_reason or opened.usage)
    assert engine.stats().active == 1  # the busy request still holds the only slot
    await busy.aclose()  # type: ignore[attr-defined]
    rest = [d async for d in waiting]
    assert "".join(d.content for d in rest) and rest[-1].usage is not None
    await wait_idle(engine)


async def test_slots_serve_requests_concurrently(make_engine: EngineFactory) -> None:
    engine = make_engine(slots=2, max_queue=4)
    results = await asyncio.gather(*(engine.complete(chat(engine)) for _ in range(4)))
    assert all(r.choices[0].message.content for r in results)
    assert engine.stats().slots == 2
    await wait_idle(engine)
