"""The request planning both in-process engines share (``mindfu_adapters.llm.planning``): tool modes and
output constraints, the context budget, and sampling defaults."""

from __future__ import annotations

import pytest

from mindfu_adapters.llm.planning import (
    ConstraintKind,
    SamplingDefaults,
    plan_output,
    plan_sampling,
)
from mindfu_adapters.llm.shaping import ToolMode
from mindfu_core.domain.chat import (
    ChatRequest,
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
from mindfu_core.errors import ContextLengthExceeded, InvalidRequest

WEATHER = ToolSpec(name="weather", description="", parameters={"type": "object"})
CLOCK = ToolSpec(name="clock", description="", parameters={"type": "object"})
DEFAULTS = SamplingDefaults(temperature=0.7, top_p=0.9, top_k=40, min_p=0.05, repeat_penalty=1.1)
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}


def chat(**fields: object) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message(role=Role.USER, content="hi"),), **fields)  # type: ignore[arg-type]


def test_tool_choice_decides_how_the_output_is_read() -> None:
    assert plan_output(chat(), logprobs_enabled=False).mode is ToolMode.PLAIN
    auto = plan_output(chat(tools=(WEATHER, CLOCK)), logprobs_enabled=False)
    assert auto.mode is ToolMode.AUTO and auto.tools == (WEATHER, CLOCK) and auto.constraint is None
    refused = ToolChoice(mode=ToolChoiceMode.NONE)
    none = plan_output(chat(tools=(WEATHER,), tool_choice=refused), logprobs_enabled=False)
    assert none.mode is ToolMode.PLAIN and none.tools == ()  # the model does not see the tools
    forced = plan_output(
        chat(tools=(WEATHER, CLOCK), tool_choice=ToolChoice(mode=ToolChoiceMode.FUNCTION, name="clock")),
        logprobs_enabled=False,
    )
    assert forced.mode is ToolMode.FORCED and forced.constraint is not None
    assert forced.constraint.kind is ConstraintKind.CALL
    assert forced.constraint.schema is not None
    assert forced.constraint.schema["properties"]["name"] == {"const": "clock"}  # only the named function


def test_response_formats_constrain_unless_a_call_is_forced() -> None:
    json_object = ResponseFormat(type=ResponseFormatType.JSON_OBJECT)
    plan = plan_output(chat(response_format=json_object), logprobs_enabled=False)
    assert plan.constraint is not None and plan.constraint.kind is ConstraintKind.JSON_OBJECT
    schema = ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema=SCHEMA)
    plan = plan_output(chat(response_format=schema, tools=(WEATHER,)), logprobs_enabled=False)
    assert plan.mode is ToolMode.AUTO and plan.constraint is not None
    assert (plan.constraint.kind, plan.constraint.schema) == (ConstraintKind.JSON_SCHEMA, SCHEMA)
    required = ToolChoice(mode=ToolChoiceMode.REQUIRED)
    plan = plan_output(
        chat(response_format=schema, tools=(WEATHER,), tool_choice=required), logprobs_enabled=False
    )
    assert plan.constraint is not None and plan.constraint.kind is ConstraintKind.CALL


def test_text_requests_echo_and_errors_name_their_field() -> None:
    plan = plan_output(TextRequest(model="m", prompt="def f(", echo=True), logprobs_enabled=False)
    assert (plan.mode, plan.echo, plan.where) == (ToolMode.PLAIN, "def f(", "prompt")
    assert plan_output(chat(), logprobs_enabled=False).where == "messages"
    with pytest.raises(InvalidRequest, match="MINDFU_LLM__LOGPROBS=true") as refused:
        plan_output(chat(sampling=SamplingParams(logprobs=True)), logprobs_enabled=False)
    assert refused.value.param == "logprobs"


def test_sampling_takes_the_engine_defaults_where_the_request_gives_none() -> None:
    asked = SamplingParams(temperature=0.0, top_k=0, stop=("\n",), seed=7, logprobs=True, top_logprobs=0)
    resolved = plan_sampling(
        asked, DEFAULTS, prompt_tokens=10, context_length=100, clamp_max_tokens=False, where="messages"
    )
    assert (resolved.temperature, resolved.top_k, resolved.top_p, resolved.min_p) == (0.0, 0, 0.9, 0.05)
    assert (resolved.repeat_penalty, resolved.stop, resolved.seed) == (1.1, ("\n",), 7)
    assert resolved.max_tokens == 90 and resolved.top_logprobs == 1  # the rest of the context; at least one
    plain = plan_sampling(
        SamplingParams(), DEFAULTS, prompt_tokens=10, context_length=100, clamp_max_tokens=False, where="m"
    )
    assert (plain.temperature, plain.top_k, plain.top_logprobs) == (0.7, 40, None)


def test_the_context_budget_refuses_or_clamps() -> None:
    def plan(max_tokens: int | None, prompt: int, *, clamp: bool = False) -> int:
        return plan_sampling(
            SamplingParams(max_tokens=max_tokens),
            DEFAULTS,
            prompt_tokens=prompt,
            context_length=100,
            clamp_max_tokens=clamp,
            where="prompt",
        ).max_tokens

    assert plan(20, 80) == 20
    assert plan(30, 80, clamp=True) == 20
    with pytest.raises(ContextLengthExceeded, match="needs 80 for the prompt \\+ 30 for the completion") as e:
        plan(30, 80)
    assert e.value.param == "prompt"
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 100 tokens"):
        plan(None, 100, clamp=True)  # nothing left, whatever the clamp
