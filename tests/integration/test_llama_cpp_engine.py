"""LlamaCppEngine on a tiny generated GGUF: grammars, forced tool calls, logprobs, stops, templates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mindfu_adapters.llm.llama_cpp import LlamaCppConfig, LlamaCppEngine
from mindfu_core import (
    ChatRequest,
    ConfigurationError,
    FinishReason,
    InvalidRequest,
    Message,
    ResponseFormat,
    ResponseFormatType,
    Role,
    SamplingParams,
    TextRequest,
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


async def test_streamed_forced_tool_call_arrives_whole(engine: LlamaCppEngine) -> None:
    choice = ToolChoice(mode=ToolChoiceMode.REQUIRED)
    deltas = [d async for d in engine.stream(request(tools=(PICK_COLOR,), tool_choice=choice))]
    assert not any(d.content for d in deltas)
    calls = [c for d in deltas for c in d.tool_calls]
    assert [c.name for c in calls] == ["pick_color"]


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
