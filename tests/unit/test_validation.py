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
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from mindfu_core.services.validation import validate_request

USER = (Message(role=Role.USER, content="hi"),)


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
        validate_request(chat(sampling=sampling), max_n=4)
    assert raised.value.param == param


def test_valid_request_passes() -> None:
    validate_request(
        chat(sampling=SamplingParams(temperature=0, top_p=0.5, max_tokens=5, stop=("x",))), max_n=1
    )


def test_empty_messages() -> None:
    with pytest.raises(InvalidRequest, match="at least one message"):
        validate_request(chat(messages=()), max_n=1)


def test_tool_choice_must_name_a_declared_tool() -> None:
    tools = (ToolSpec(name="a"),)
    with pytest.raises(InvalidRequest, match="unknown tool"):
        validate_request(
            chat(tools=tools, tool_choice=ToolChoice(mode=ToolChoiceMode.FUNCTION, name="b")), max_n=1
        )
    with pytest.raises(InvalidRequest, match="needs at least one tool"):
        validate_request(chat(tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED)), max_n=1)
    with pytest.raises(InvalidRequest, match="unique"):
        validate_request(chat(tools=(ToolSpec(name="a"), ToolSpec(name="a"))), max_n=1)


def test_json_schema_needs_a_schema() -> None:
    with pytest.raises(InvalidRequest):
        validate_request(chat(response_format=ResponseFormat(type=ResponseFormatType.JSON_SCHEMA)), max_n=1)


def test_tool_message_needs_its_call_id() -> None:
    messages = (*USER, Message(role=Role.TOOL, content="42"))
    with pytest.raises(InvalidRequest) as raised:
        validate_request(chat(messages=messages), max_n=1)
    assert raised.value.param == "messages[1].tool_call_id"
