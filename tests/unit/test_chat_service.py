"""ChatService against the scripted engine: routing by model, validation, results and streams."""

from __future__ import annotations

import pytest

from mindfu_core import (
    ChatRequest,
    ChatService,
    FinishReason,
    InvalidRequest,
    Message,
    NotFound,
    Role,
    SamplingParams,
    TextRequest,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from mindfu_core.domain.chat import ModelInfo
from mindfu_core.domain.conversations import CallContext
from mindfu_core.domain.limits import RequestLimits
from tests.fakes import Reply, ScriptedEngine

USER = (Message(role=Role.USER, content="hi there"),)


def service(*engines: ScriptedEngine) -> ChatService:
    return ChatService(engines or [ScriptedEngine()])


async def test_complete_returns_the_engine_answer_with_usage() -> None:
    chat = service(ScriptedEngine([Reply(text="one two three")]))
    result = await chat.complete(ChatRequest(model="scripted", messages=USER))
    assert result.choices[0].message.content == "one two three"
    assert result.choices[0].message.role is Role.ASSISTANT
    assert result.choices[0].finish_reason is FinishReason.STOP
    assert result.usage.completion_tokens == 3
    assert result.usage.prompt_tokens == 4
    assert result.usage.total_tokens == 7


async def test_stream_yields_fragments_then_finish_then_usage() -> None:
    chat = service(ScriptedEngine([Reply(text="a b")]))
    deltas = [d async for d in await chat.stream(ChatRequest(model="scripted", messages=USER))]
    assert [d.content for d in deltas if d.content] == ["a", " b"]
    assert [d.finish_reason for d in deltas if d.finish_reason] == [FinishReason.STOP]
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens == 2


async def test_requests_are_routed_by_model_id() -> None:
    first = ScriptedEngine([Reply(text="from first")], model_id="first")
    second = ScriptedEngine([Reply(text="from second")], model_id="second")
    chat = service(first, second)
    result = await chat.complete(ChatRequest(model="second", messages=USER))
    assert result.choices[0].message.content == "from second"
    assert [m.id for m in chat.models()] == ["first", "second"]
    assert not first.requests


async def test_unknown_model_is_not_found() -> None:
    with pytest.raises(NotFound) as raised:
        await service().complete(ChatRequest(model="gpt-17", messages=USER))
    assert raised.value.param == "model"
    assert raised.value.code == "model_not_found"


async def test_duplicate_model_ids_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        ChatService([ScriptedEngine(), ScriptedEngine()])


async def test_stream_validates_before_the_first_delta() -> None:
    engine = ScriptedEngine()
    with pytest.raises(InvalidRequest):
        await service(engine).stream(ChatRequest(model="scripted", messages=()))
    assert not engine.requests


async def test_n_choices_and_limits() -> None:
    chat = ChatService([ScriptedEngine([Reply(text="x"), Reply(text="y")])], limits=RequestLimits(max_n=2))
    result = await chat.complete(ChatRequest(model="scripted", messages=USER, n=2))
    assert [c.message.content for c in result.choices] == ["x", "y"]
    with pytest.raises(InvalidRequest) as raised:
        await chat.complete(ChatRequest(model="scripted", messages=USER, n=3))
    assert raised.value.param == "n"


async def test_max_tokens_cuts_with_length() -> None:
    chat = service(ScriptedEngine([Reply(text="a b c d e")]))
    result = await chat.complete(
        ChatRequest(model="scripted", messages=USER, sampling=SamplingParams(max_tokens=2))
    )
    assert result.choices[0].message.content == "a b"
    assert result.choices[0].finish_reason is FinishReason.LENGTH


async def test_the_limits_bound_every_answer_and_give_a_length_to_those_naming_none() -> None:
    engine = ScriptedEngine([Reply(text="a b c d e")] * 3)
    chat = ChatService([engine], limits=RequestLimits(max_tokens=3))
    for asked, sent in ((None, 3), (10, 3), (2, 2)):
        result = await chat.complete(
            ChatRequest(model="scripted", messages=USER, sampling=SamplingParams(max_tokens=asked))
        )
        assert engine.requests[-1].sampling.max_tokens == sent
        assert result.choices[0].finish_reason is FinishReason.LENGTH


async def test_tool_calls_come_back_whole() -> None:
    call = ToolCall(id="call_1", name="lookup", arguments='{"q": "x"}')
    chat = service(ScriptedEngine([Reply(tool_calls=(call,))]))
    request = ChatRequest(
        model="scripted",
        messages=USER,
        tools=(ToolSpec(name="lookup"),),
        tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED),
    )
    result = await chat.complete(request)
    assert result.choices[0].message.tool_calls == (call,)
    assert result.choices[0].message.content is None
    assert result.choices[0].finish_reason is FinishReason.TOOL_CALLS


async def test_text_requests_use_the_same_path() -> None:
    chat = service(ScriptedEngine([Reply(text="continued text")]))
    result = await chat.complete(TextRequest(model="scripted", prompt="Once upon"))
    assert result.choices[0].message.content == "continued text"
    assert result.usage.prompt_tokens == 2


class Tuned(ScriptedEngine):
    def model_info(self) -> ModelInfo:
        return ModelInfo(id="ft:acme-model", context_length=4096, engine="scripted")


async def test_a_fine_tuned_model_is_served_to_its_tenant_only() -> None:
    chat = ChatService([ScriptedEngine([Reply(text="base")])])
    chat.add_engine(Tuned([Reply(text="tuned")]), tenant="acme")
    assert [m.id for m in await chat.list_models(tenant="acme")] == ["scripted", "ft:acme-model"]
    assert [m.id for m in await chat.list_models(tenant="globex")] == ["scripted"]
    assert len(await chat.list_models()) == 2  # the operator's own tools see every model
    request = ChatRequest(model="ft:acme-model", messages=USER)
    answer = await chat.complete(request, CallContext(tenant="acme"))
    assert answer.choices[0].message.content == "tuned"
    with pytest.raises(NotFound):
        await chat.complete(request, CallContext(tenant="globex"))
    with pytest.raises(NotFound):
        await chat.get_model("ft:acme-model", tenant="globex")
