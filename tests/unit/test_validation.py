"""Request validation shared by every edge."""

from __future__ import annotations

import pytest

from mindfu_core import (
    ChatRequest,
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
from mindfu_core.domain.limits import RequestLimits
from mindfu_core.services.validation import schema_depth, validate_request

USER = (Message(role=Role.USER, content="hi"),)
ONE = RequestLimits(max_n=1)


def chat(**kwargs: object) -> ChatRequest:
    return ChatRequest(model="m", messages=kwargs.pop("messages", USER), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sampling", "param"),
    [
        (SamplingParams(temperature=2.5), "temperature"),
        (SamplingParams(temperature=-0.1), "temperature"),
        (SamplingParams(top_p=1.5), "top_p"),
        (SamplingParams(max_tokens=0), "max_tokens"),
        (SamplingParams(presence_penalty=3), "presence_penalty"),
        (SamplingParams(frequency_penalty=-3), "frequency_penalty"),
        (SamplingParams(stop=("a", "b", "c", "d", "e")), "stop"),
        (SamplingParams(stop=("",)), "stop"),
        (SamplingParams(logprobs=True, top_logprobs=21), "top_logprobs"),
        (SamplingParams(top_logprobs=2), "top_logprobs"),
        (SamplingParams(top_k=-1), "top_k"),
        (SamplingParams(min_p=1.5), "min_p"),
        (SamplingParams(repeat_penalty=0), "repeat_penalty"),
        (SamplingParams(repeat_penalty=float("nan")), "repeat_penalty"),
        (SamplingParams(repeat_penalty=float("inf")), "repeat_penalty"),
        (SamplingParams(temperature=float("nan")), "temperature"),
        (SamplingParams(min_p=float("nan")), "min_p"),
        (SamplingParams(seed=2**64), "seed"),
        (SamplingParams(seed=-(2**63) - 1), "seed"),
        (SamplingParams(top_k=2**40), "top_k"),
    ],
)
def test_sampling_out_of_range_names_the_parameter(sampling: SamplingParams, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate_request(chat(sampling=sampling), RequestLimits(max_n=4))
    assert raised.value.param == param


def test_valid_request_passes() -> None:
    validate_request(chat(sampling=SamplingParams(temperature=0, top_p=0.5, max_tokens=5, stop=("x",))), ONE)


def test_empty_messages() -> None:
    with pytest.raises(InvalidRequest, match="at least one message"):
        validate_request(chat(messages=()), ONE)


def test_tool_choice_must_name_a_declared_tool() -> None:
    tools = (ToolSpec(name="a"),)
    with pytest.raises(InvalidRequest, match="unknown tool"):
        validate_request(
            chat(tools=tools, tool_choice=ToolChoice(mode=ToolChoiceMode.FUNCTION, name="b")), ONE
        )
    with pytest.raises(InvalidRequest, match="needs at least one tool"):
        validate_request(chat(tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED)), ONE)
    with pytest.raises(InvalidRequest, match="unique"):
        validate_request(chat(tools=(ToolSpec(name="a"), ToolSpec(name="a"))), ONE)


def test_json_schema_needs_a_schema() -> None:
    with pytest.raises(InvalidRequest):
        validate_request(chat(response_format=ResponseFormat(type=ResponseFormatType.JSON_SCHEMA)), ONE)


def test_tool_message_needs_its_call_id() -> None:
    messages = (*USER, Message(role=Role.TOOL, content="42"))
    with pytest.raises(InvalidRequest) as raised:
        validate_request(chat(messages=messages), ONE)
    assert raised.value.param == "messages[1].tool_call_id"


def nested(depth: int) -> dict[str, object]:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(depth - 1):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def test_schema_depth_counts_every_level_without_recursion() -> None:
    assert schema_depth("x") == 0
    assert schema_depth({"a": [1, {"b": 2}]}) == 3
    deep: object = "leaf"
    for _ in range(100_000):  # deeper than Python's recursion limit
        deep = [deep]
    assert schema_depth(deep) == 100_000


LIMITS = RequestLimits(
    max_messages=3,
    max_message_chars=10,
    max_prompt_chars=25,
    max_tools=2,
    max_tool_schema_depth=4,
    max_stop=2,
    max_stop_chars=3,
)
SAY = Message(role=Role.USER, content="0123456789")


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (chat(messages=(SAY,) * 4), "messages"),
        (chat(messages=(Message(role=Role.USER, content="x" * 11),)), "messages[0].content"),
        (chat(messages=(SAY, SAY, Message(role=Role.USER, content="123456"))), "messages"),
        (chat(tools=tuple(ToolSpec(name=f"t{i}") for i in range(3))), "tools"),
        (
            chat(tools=(ToolSpec(name="a"), ToolSpec(name="b", parameters=nested(3)))),
            "tools[1].function.parameters",
        ),
        (chat(sampling=SamplingParams(stop=("a", "b", "c"))), "stop"),
        (chat(sampling=SamplingParams(stop=("abcd",))), "stop"),
        (TextRequest(model="m", prompt="x" * 26), "prompt"),
    ],
)
def test_a_request_past_its_limits_is_refused_naming_the_field(
    request_: ChatRequest | TextRequest, param: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate_request(request_, LIMITS)
    assert raised.value.param == param


def test_a_request_at_its_limits_passes() -> None:
    validate_request(
        chat(
            messages=(SAY, SAY, Message(role=Role.USER, content="12345")),
            tools=(
                ToolSpec(name="a"),
                ToolSpec(name="b", parameters={"type": "object", "properties": {"x": {}}}),
            ),
            sampling=SamplingParams(stop=("abc", "d")),
        ),
        LIMITS,
    )
