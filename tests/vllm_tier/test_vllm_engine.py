"""What VllmEngine adds beyond the contract: answers, structured outputs, forced and parsed tool calls,
logprobs, seeds and stops, and LoRA adapters (per request, added while serving, refused when they do not
fit the base model, before vLLM could fail on them)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mindfu_adapters.llm.vllm_engine import VllmConfig, VllmEngine, check_lora_adapter
from mindfu_adapters.llm.vllm_wire import ParsedToolCalls
from mindfu_core import (
    ChatRequest,
    ConfigurationError,
    FinishReason,
    InvalidRequest,
    Message,
    Role,
    SamplingParams,
)
from mindfu_core.domain.chat import (
    ChatDelta,
    ResponseFormat,
    ResponseFormatType,
    ToolCallAssembler,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from tests.vllm_tier.conftest import CONTEXT

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

QUESTION = "What is the capital of France? Answer in one word."
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def ask(text: str = QUESTION, model: str = "smollm2", **kw: Any) -> ChatRequest:
    sampling = SamplingParams(**{"max_tokens": 24, "temperature": 0.0, **kw.pop("sampling", {})})
    return ChatRequest(
        model=model, messages=(Message(role=Role.USER, content=text),), sampling=sampling, **kw
    )


async def answer(engine: Any, request: ChatRequest) -> tuple[list[ChatDelta], str]:
    deltas = [d async for d in engine.stream(request)]
    return deltas, "".join(d.content for d in deltas)


async def test_answers_stream_token_by_token(vllm_engine: VllmEngine) -> None:
    deltas, text = await answer(vllm_engine, ask())
    assert "Paris" in text
    assert len([d for d in deltas if d.content]) > 1
    assert vllm_engine.model_info().engine == "vllm"
    assert vllm_engine.model_info().context_length == CONTEXT


async def test_json_schema_output_follows_the_schema(vllm_engine: VllmEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    request = ask(
        "Give the largest city of France and its population as JSON.",
        sampling={"max_tokens": 64},
        response_format=ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema=schema, name="city"),
    )
    _, text = await answer(vllm_engine, request)
    found = json.loads(text)
    assert isinstance(found["city"], str) and isinstance(found["population"], int)
    json_object = ask("Describe Paris as JSON.", sampling={"max_tokens": 48})
    result = await vllm_engine.complete(
        replace(json_object, response_format=ResponseFormat(type=ResponseFormatType.JSON_OBJECT))
    )
    if result.choices[0].finish_reason is FinishReason.STOP:
        assert isinstance(json.loads(result.choices[0].message.content or ""), dict)


async def test_a_schema_vllm_cannot_compile_is_a_bad_request_and_the_engine_lives_on(
    vllm_engine: VllmEngine,
) -> None:
    bogus = ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema={"type": "bogus"}, name="bad")
    with pytest.raises(InvalidRequest) as caught:
        await vllm_engine.complete(ask(response_format=bogus))
    assert caught.value.param == "response_format"
    assert vllm_engine.stats().ready
    assert "Paris" in (await answer(vllm_engine, ask()))[1]


async def test_a_forced_tool_call_streams_its_name_then_its_arguments(vllm_engine: VllmEngine) -> None:
    for choice in (
        ToolChoice(mode=ToolChoiceMode.FUNCTION, name="get_weather"),
        ToolChoice(mode=ToolChoiceMode.REQUIRED),
    ):
        request = ask("Weather in Rome?", tools=(WEATHER,), tool_choice=choice, sampling={"max_tokens": 64})
        deltas, text = await answer(vllm_engine, request)
        assert not text
        pieces = [p for d in deltas for p in d.tool_call_deltas]
        assert pieces[0].name == "get_weather" and pieces[0].id
        assert len(pieces) > 2  # the arguments arrive as vLLM writes them
        assembler = ToolCallAssembler()
        for delta in deltas:
            assembler.add(delta)
        (call,) = assembler.calls()
        assert isinstance(json.loads(call.arguments)["city"], str)
        assert [d.finish_reason for d in deltas if d.finish_reason] == [FinishReason.TOOL_CALLS]


async def test_vllms_tool_parser_reads_calls_the_model_makes_on_its_own(vllm_engine: VllmEngine) -> None:
    """The Hermes parser of vLLM, fed the way the engine feeds it (token by token), on SmolLM2's tokenizer."""
    prepared = await asyncio.to_thread(vllm_engine._prepare, ask("Weather in Paris?", tools=(WEATHER,)))
    assert prepared.parser_request is not None  # auto calls go to vLLM's parser on this engine
    tokenizer = vllm_engine._tokenizer
    said = 'Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    reader = vllm_engine._reader(0, prepared)
    assert isinstance(reader, ParsedToolCalls)
    deltas = []
    previous = ""
    ids = tokenizer.encode(said, add_special_tokens=False)
    for end in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:end])
        delta = reader.feed(text[len(previous) :], ids[end - 1 : end], ())
        previous = text
        if delta is not None:
            deltas.append(delta)
    deltas.extend(reader.finish(FinishReason.STOP))
    assert "".join(d.content for d in deltas).strip() == "Let me check."
    assembler = ToolCallAssembler()
    for delta in deltas:
        assembler.add(delta)
    (call,) = assembler.calls()
    assert call.name == "get_weather" and call.id
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert deltas[-1].finish_reason is FinishReason.TOOL_CALLS
    plain = vllm_engine._reader(0, prepared)
    got = [plain.feed("Sunny", [], ()), *plain.finish(FinishReason.STOP)]
    assert got[0] is not None and got[0].content == "Sunny"
    assert got[-1].finish_reason is FinishReason.STOP


async def test_logprobs_seeds_and_stops(vllm_engine: VllmEngine) -> None:
    deltas, _ = await answer(
        vllm_engine, ask(sampling={"logprobs": True, "top_logprobs": 2, "max_tokens": 4})
    )
    logprobs = [lp for d in deltas for lp in d.logprobs]
    assert len(logprobs) == 4
    assert all(lp.logprob <= 0 and 1 <= len(lp.top) <= 2 for lp in logprobs)
    seeded = {"temperature": 1.0, "seed": 7, "max_tokens": 16}
    first = (await answer(vllm_engine, ask("Tell me a story.", sampling=seeded)))[1]
    assert first == (await answer(vllm_engine, ask("Tell me a story.", sampling=seeded)))[1]
    stopped = await vllm_engine.complete(ask(sampling={"stop": ("Paris",)}))
    assert "Paris" not in (stopped.choices[0].message.content or "")
    assert stopped.choices[0].finish_reason is FinishReason.STOP
    assert stopped.choices[0].stop_sequence == "Paris"


async def test_a_lora_adapter_per_request_changes_the_answer(vllm_engine: VllmEngine) -> None:
    (adapter,) = vllm_engine.adapter_engines()
    assert adapter.model_info().id == "smol-lora"
    base, tuned = await asyncio.gather(
        answer(vllm_engine, ask()), answer(adapter, ask(model="smol-lora"))
    )  # in one batch
    assert base[1] != tuned[1]
    assert base[1] == (await answer(vllm_engine, ask()))[1]  # the adapter did not stick to the base


async def test_adapters_added_while_serving_and_ones_that_do_not_fit(
    vllm_engine: VllmEngine, lora_adapter: Path, foreign_adapter: Path, wide_adapter: Path
) -> None:
    added = await vllm_engine.add_adapter("smol-lora-2", lora_adapter)
    (first,) = [e for e in vllm_engine.adapter_engines() if e.model_info().id == "smol-lora"]
    assert (await answer(added, ask()))[1] == (await answer(first, ask()))[1]
    with pytest.raises(ConfigurationError, match="another base model"):
        await vllm_engine.add_adapter("foreign", foreign_adapter)
    with pytest.raises(ConfigurationError, match="max_lora_rank"):
        await vllm_engine.add_adapter("wide", wide_adapter)
    with pytest.raises(ConfigurationError, match="already served"):
        await vllm_engine.add_adapter("smol-lora-2", lora_adapter)
    assert vllm_engine.stats().ready  # vLLM never saw them
    assert "Paris" in (await answer(vllm_engine, ask()))[1]


def test_adapter_checks_name_what_is_wrong(
    smollm2_hf: Path, lora_adapter: Path, foreign_adapter: Path, wide_adapter: Path, tmp_path: Path
) -> None:
    check_lora_adapter("ok", lora_adapter, str(smollm2_hf), 16)
    with pytest.raises(ConfigurationError, match="not a PEFT adapter folder"):
        check_lora_adapter("missing", tmp_path, str(smollm2_hf), 16)
    with pytest.raises(ConfigurationError, match=r"is \[8, 512\], the layer is \[576, 1536\]"):
        check_lora_adapter("foreign", foreign_adapter, str(smollm2_hf), 16)
    with pytest.raises(ConfigurationError, match="rank 64"):
        check_lora_adapter("wide", wide_adapter, str(smollm2_hf), 16)


def test_bad_engine_settings_fail_before_vllm_starts(smollm2_hf: Path, foreign_adapter: Path) -> None:
    config = VllmConfig(model=str(smollm2_hf), model_id="smollm2", context_length=CONTEXT)
    with pytest.raises(ConfigurationError, match="does not fit"):
        VllmEngine(replace(config, adapters={"foreign": foreign_adapter}))
    with pytest.raises(ConfigurationError, match=r"no tool parser .nope.*hermes"):
        VllmEngine(replace(config, tool_call_parser="nope"))
    with pytest.raises(ConfigurationError, match="at least one slot"):
        VllmEngine(replace(config, slots=0))


async def test_a_finished_jobs_adapter_is_served_on_the_vllm_engine(
    vllm_engine: VllmEngine, lora_adapter: Path
) -> None:
    """A fine-tuning job's PEFT adapter goes onto the running vLLM engine of its base model (its LoRA GGUF
    is llama.cpp's, and the merged GGUF is not loaded)."""
    from datetime import UTC, datetime

    from mindfu_adapters.jobs.serving import Publisher
    from mindfu_core.domain.training import DataSource, JobSpec, JobStatus, TrainingJob
    from mindfu_core.services.chat import ChatService

    def no_gguf(path: Path, name: str) -> Any:
        raise AssertionError(f"the merged GGUF {path} was loaded for {name}")

    chat = ChatService([vllm_engine, *vllm_engine.adapter_engines()])
    job = TrainingJob(
        id="ftjob-vllm",
        spec=JobSpec(base_model="smollm2", source=DataSource.CONVERSATIONS),
        status=JobStatus.SUCCEEDED,
        created_at=datetime.now(UTC),
        fine_tuned_model="ft:smollm2:vllm-job",
        artifacts={"adapter": str(lora_adapter), "gguf": "/nowhere/merged.gguf"},
    )
    assert await Publisher(chat, no_gguf)(job)
    served = chat.engine_for("ft:smollm2:vllm-job")
    assert served.model_info().engine == "vllm"
    tuned = (await answer(served, ask(model="ft:smollm2:vllm-job")))[1]
    assert tuned == (await answer(chat.engine_for("smol-lora"), ask(model="smol-lora")))[1]
    assert tuned != (await answer(vllm_engine, ask()))[1]


async def test_unset_temperature_and_top_p_take_the_engines_defaults(vllm_engine: VllmEngine) -> None:
    unset = ChatRequest(model="smollm2", messages=(Message(role=Role.USER, content="hi"),))
    prepared = await asyncio.to_thread(vllm_engine._prepare, unset)
    assert (prepared.params.temperature, prepared.params.top_p) == (1.0, 1.0)  # VllmConfig's defaults
    explicit = replace(unset, sampling=SamplingParams(temperature=0.3, top_p=0.5))
    prepared = await asyncio.to_thread(vllm_engine._prepare, explicit)
    assert (prepared.params.temperature, prepared.params.top_p) == (0.3, 0.5)
