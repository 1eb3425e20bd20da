"""LlamaCppEngine on a tiny generated GGUF: grammars, forced tool calls, logprobs, stops, templates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mindfu_adapters.llm.llama_cpp import LlamaCppConfig, LlamaCppEngine
from mindfu_core import (
    ChatRequest,
    ConfigurationError,
    ContextLengthExceeded,
    FinishReason,
    InvalidRequest,
    Message,
    ResponseFormat,
    ResponseFormatType,
    Role,
    SamplingParams,
    TextRequest,
    ToolCallAssembler,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from tests.fixtures.tiny_gguf import write_tiny_gguf

BOUNDED_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "color": {"enum": ["red", "green", "blue"]}},
    "required": ["ok", "color"],
    "additionalProperties": False,
}
PICK_COLOR = ToolSpec(
    name="pick_color",
    description="Pick a color",
    parameters={
        "type": "object",
        "properties": {"color": {"enum": ["red", "green"]}},
        "required": ["color"],
        "additionalProperties": False,
    },
)
USER = (Message(role=Role.USER, content="hello"),)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[LlamaCppEngine]:
    model = write_tiny_gguf(tmp_path / "tiny.gguf", context_length=2048)
    engine = LlamaCppEngine(
        LlamaCppConfig(model_path=model, model_id="tiny", context_length=2048, threads=1, logprobs=True)
    )
    yield engine
    await engine.aclose()


def request(**kw: object) -> ChatRequest:
    sampling = kw.pop("sampling", SamplingParams(max_tokens=300, temperature=1.0, seed=3))
    return ChatRequest(model="tiny", messages=USER, sampling=sampling, **kw)  # type: ignore[arg-type]


async def test_json_schema_grammar_forces_valid_json(engine: LlamaCppEngine) -> None:
    fmt = ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema=BOUNDED_SCHEMA)
    for seed in range(3):
        sampling = SamplingParams(max_tokens=60, temperature=1.0, seed=seed)
        result = await engine.complete(request(response_format=fmt, sampling=sampling))
        data = json.loads(result.choices[0].message.content or "")
        assert isinstance(data["ok"], bool)
        assert data["color"] in ("red", "green", "blue")
        assert set(data) == {"ok", "color"}


async def test_forced_tool_call_is_parsed(engine: LlamaCppEngine) -> None:
    choice = ToolChoice(mode=ToolChoiceMode.FUNCTION, name="pick_color")
    result = await engine.complete(request(tools=(PICK_COLOR,), tool_choice=choice))
    (only,) = result.choices
    assert only.finish_reason is FinishReason.TOOL_CALLS
    assert only.message.content is None
    (call,) = only.message.tool_calls
    assert call.name == "pick_color"
    assert json.loads(call.arguments)["color"] in ("red", "green")


async def test_a_forced_tool_call_streams_its_name_then_its_arguments(engine: LlamaCppEngine) -> None:
    choice = ToolChoice(mode=ToolChoiceMode.REQUIRED)
    deltas = [d async for d in engine.stream(request(tools=(PICK_COLOR,), tool_choice=choice))]
    assert not any(d.content or d.tool_calls for d in deltas)
    pieces = [p for d in deltas for p in d.tool_call_deltas]
    assert pieces[0].name == "pick_color" and pieces[0].id and pieces[0].id.startswith("call_")
    assert all(p.index == 0 and p.name is None and p.id is None for p in pieces[1:])
    assert len(pieces) > 3  # the arguments arrive as the model writes them
    assembler = ToolCallAssembler()
    for delta in deltas:
        assembler.add(delta)
    (call,) = assembler.calls()
    assert json.loads(call.arguments)["color"] in ("red", "green")
    assert [d.finish_reason for d in deltas if d.finish_reason] == [FinishReason.TOOL_CALLS]


async def test_a_forced_call_cut_short_ends_with_length(engine: LlamaCppEngine) -> None:
    choice = ToolChoice(mode=ToolChoiceMode.REQUIRED)
    for budget in (4, 24):  # cut before the call's name is written, and after
        short = SamplingParams(max_tokens=budget, temperature=1.0, seed=3)
        result = await engine.complete(request(tools=(PICK_COLOR,), tool_choice=choice, sampling=short))
        (only,) = result.choices
        assert only.finish_reason is FinishReason.LENGTH
        assert not only.message.content  # no call markup leaks into the text
        assert [c.name for c in only.message.tool_calls] in ([], ["pick_color"])


async def test_logprobs(engine: LlamaCppEngine) -> None:
    sampling = SamplingParams(max_tokens=5, temperature=0.0, logprobs=True, top_logprobs=3)
    result = await engine.complete(request(sampling=sampling))
    logprobs = result.choices[0].logprobs
    assert logprobs is not None
    assert len(logprobs) == 5
    assert result.usage.completion_tokens == 5
    assert all(lp.logprob <= 0.0 for lp in logprobs)
    assert all(1 <= len(lp.top) <= 3 for lp in logprobs)
    assert "".join(lp.token for lp in logprobs) == result.choices[0].message.content


async def test_logprobs_need_the_setting(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "plain.gguf")
    plain = LlamaCppEngine(LlamaCppConfig(model_path=model, model_id="plain", context_length=256))
    with pytest.raises(InvalidRequest, match="LOGPROBS"):
        await plain.complete(request(sampling=SamplingParams(max_tokens=2, logprobs=True)))
    await plain.aclose()


async def test_stop_sequences_end_the_text_before_the_stop(engine: LlamaCppEngine) -> None:
    free = await engine.complete(
        TextRequest(model="tiny", prompt="abc", sampling=SamplingParams(max_tokens=40, temperature=0, seed=7))
    )
    text = free.choices[0].message.content or ""
    stop = text[10:12]
    assert len(stop) == 2
    stopped = await engine.complete(
        TextRequest(
            model="tiny",
            prompt="abc",
            sampling=SamplingParams(max_tokens=40, temperature=0, seed=7, stop=(stop,)),
        )
    )
    assert stopped.choices[0].finish_reason is FinishReason.STOP
    assert stop not in (stopped.choices[0].message.content or "")
    assert stopped.choices[0].stop_sequence == stop  # which one ended it (for Anthropic's stop_sequence)
    assert free.choices[0].stop_sequence is None


async def test_echo_returns_the_prompt_first(engine: LlamaCppEngine) -> None:
    result = await engine.complete(
        TextRequest(model="tiny", prompt="Once", echo=True, sampling=SamplingParams(max_tokens=3))
    )
    assert (result.choices[0].message.content or "").startswith("Once")


async def test_the_gguf_chat_template_renders_the_prompt(engine: LlamaCppEngine) -> None:
    with_system = [Message(role=Role.SYSTEM, content="be brief"), *USER]
    assert await engine.count_tokens(with_system) > await engine.count_tokens(list(USER))


async def test_missing_and_invalid_model_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist") as missing:
        LlamaCppEngine(LlamaCppConfig(model_path=tmp_path / "none.gguf", model_id="x"))
    assert "MINDFU_LLM__MODEL_PATH" in missing.value.message
    junk = tmp_path / "junk.gguf"
    junk.write_text("hello")
    with pytest.raises(ConfigurationError, match="not a GGUF"):
        LlamaCppEngine(LlamaCppConfig(model_path=junk, model_id="x"))


async def test_unsupported_schema_is_invalid_request(engine: LlamaCppEngine) -> None:
    fmt = ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema={"type": "object", "$ref": "#/nowhere"})
    with pytest.raises(InvalidRequest):
        await engine.complete(request(response_format=fmt))


async def test_max_tokens_beyond_the_window_is_lowered_to_fit(engine: LlamaCppEngine) -> None:
    """Agents ask for more tokens than a small window holds after their prompt: the engine generates what
    fits (by default), ending with ``length`` when it runs out; the prompt itself must still fit."""
    window = engine.model_info().context_length
    asked = request(sampling=SamplingParams(max_tokens=window, temperature=1.0, seed=3))
    result = await engine.complete(asked)
    prompt = await engine.count_tokens(USER)
    assert 0 < result.usage.completion_tokens <= window - prompt
    assert result.usage.total_tokens <= window
    too_long = ChatRequest(model="tiny", messages=(Message(role=Role.USER, content="lorem ipsum " * window),))
    with pytest.raises(ContextLengthExceeded):
        await engine.complete(too_long)


def test_unset_temperature_and_top_p_take_the_models_defaults(tmp_path: Path) -> None:
    from mindfu_adapters.container import build_engine
    from mindfu_adapters.settings import llm_settings

    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    ask = ChatRequest(model="tiny", messages=(Message(role=Role.USER, content="hi"),))
    tuned = build_engine(llm_settings(model_path=path, temperature=0.15, top_p=0.9))
    plain = build_engine(llm_settings(model_path=path))
    try:
        assert _sampled(tuned, ask) == (0.15, 0.9)
        assert _sampled(plain, ask) == (1.0, 1.0)  # OpenAI's defaults
        explicit = ChatRequest(
            model="tiny", messages=ask.messages, sampling=SamplingParams(temperature=0.3, top_p=0.5)
        )
        assert _sampled(tuned, explicit) == (0.3, 0.5)
    finally:
        for engine in (tuned, plain):
            asyncio.run(engine.aclose())


def _sampled(engine: object, request: ChatRequest) -> tuple[float, float]:
    kwargs = engine._prepare(request).kwargs  # type: ignore[attr-defined]
    return kwargs["temperature"], kwargs["top_p"]


async def test_a_failed_step_fails_its_requests_and_the_engine_goes_on(
    engine: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp refusing a batch (here: a decode that returns an error once) ends the requests in it with
    EngineFailure; the scheduler and the slot live on for the next request."""
    import llama_cpp

    from mindfu_core import EngineFailure

    decode = llama_cpp.llama_decode
    calls = {"n": 0}

    def failing_once(ctx: object, batch: object) -> int:
        calls["n"] += 1
        return -1 if calls["n"] == 1 else int(decode(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", failing_once)
    sampling = SamplingParams(max_tokens=5, temperature=0.0)
    with pytest.raises(EngineFailure):
        await engine.complete(request(sampling=sampling))
    result = await engine.complete(request(sampling=sampling))
    assert result.usage.completion_tokens == 5 and result.usage.cached_tokens == 0
    assert engine.stats().active == 0
