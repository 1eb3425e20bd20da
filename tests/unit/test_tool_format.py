"""Tool calling for tool-unaware templates: parsing, streaming hold-back, and message rewriting."""

from __future__ import annotations

import json

from mindfu_adapters.llm.shaping import ChoiceShaper, ToolMode
from mindfu_adapters.llm.tool_format import (
    call_grammar_schema,
    could_become_call,
    parse_tool_calls,
    template_messages,
    tools_system_block,
)
from mindfu_core import FinishReason, Message, Role, ToolCall, ToolChoice, ToolChoiceMode, ToolSpec

WEATHER = ToolSpec(name="get_weather", description="Weather", parameters={"type": "object"})
TIME = ToolSpec(name="get_time")


def test_parses_hermes_calls() -> None:
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    calls = parse_tool_calls(text, [WEATHER])
    assert calls is not None and len(calls) == 1
    assert calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert calls[0].id.startswith("call_")


def test_parses_several_calls_and_bare_json_and_string_arguments() -> None:
    two = (
        '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>\n'
        '<tool_call>{"name": "get_time", "arguments": "{\\"tz\\": \\"UTC\\"}"}</tool_call>'
    )
    calls = parse_tool_calls(two, [WEATHER, TIME])
    assert calls is not None and [c.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[1].arguments) == {"tz": "UTC"}
    bare = parse_tool_calls('{"name": "get_time", "arguments": {}}', [TIME])
    assert bare is not None and bare[0].name == "get_time"


def test_ordinary_answers_and_bad_calls_are_not_calls() -> None:
    assert parse_tool_calls("The weather is fine.", [WEATHER]) is None
    assert parse_tool_calls('<tool_call>{"name": "unknown", "arguments": {}}</tool_call>', [WEATHER]) is None
    assert parse_tool_calls("<tool_call>{not json</tool_call>", [WEATHER]) is None
    assert parse_tool_calls('{"answer": 42}', [WEATHER]) is None


def test_could_become_call() -> None:
    assert could_become_call("")
    assert could_become_call("  <tool")
    assert could_become_call("<tool_call>{")
    assert not could_become_call("The")
    assert not could_become_call("<b>")


def test_auto_shaper_streams_text_and_holds_back_calls() -> None:
    plain = ChoiceShaper(0, ToolMode.AUTO, [WEATHER])
    assert plain.feed("") is None
    first = plain.feed("Hello")
    assert first is not None and first.content == "Hello"
    later = plain.feed(" world")
    assert later is not None and later.content == " world"
    assert [d.finish_reason for d in plain.finish(FinishReason.STOP)] == [FinishReason.STOP]

    calling = ChoiceShaper(0, ToolMode.AUTO, [WEATHER])
    for piece in ["<tool", '_call>{"name": "get_weather", ', '"arguments": {}}', "</tool_call>"]:
        assert calling.feed(piece) is None
    (end,) = calling.finish(FinishReason.STOP)
    assert end.finish_reason is FinishReason.TOOL_CALLS
    assert end.tool_calls[0].name == "get_weather"


def test_forced_shaper_streams_the_call_as_it_is_written() -> None:
    shaper = ChoiceShaper(0, ToolMode.FORCED, [WEATHER])
    assert shaper.feed('<tool_call>{"name": "get_wea') is None  # not named yet
    head = shaper.feed('ther", "arguments": {"ci')
    assert head is not None and not head.content
    (first,) = head.tool_call_deltas
    assert (first.index, first.name, first.arguments) == (0, "get_weather", '{"ci')
    assert first.id is not None and first.id.startswith("call_")
    pieces = [shaper.feed(text) for text in ('ty": "a}\\"b', '"}', "}</tool_call>")]
    assert [d.tool_call_deltas[0].arguments for d in pieces if d is not None] == ['ty": "a}\\"b', '"}']
    assert pieces[2] is None  # the call's closing brace and tag are not arguments
    assert [d.finish_reason for d in shaper.finish(FinishReason.STOP)] == [FinishReason.TOOL_CALLS]


def test_a_forced_call_cut_short_leaks_no_markup() -> None:
    before_the_name = ChoiceShaper(0, ToolMode.FORCED, [WEATHER])
    assert before_the_name.feed('<tool_call>{"name": "get_wea') is None
    (end,) = before_the_name.finish(FinishReason.LENGTH)
    assert (end.content, end.tool_calls, end.finish_reason) == ("", (), FinishReason.LENGTH)
    in_the_arguments = ChoiceShaper(0, ToolMode.FORCED, [WEATHER])
    assert in_the_arguments.feed('<tool_call>{"name": "get_weather", "arguments": {"city": "Pa') is not None
    (end,) = in_the_arguments.finish(FinishReason.LENGTH)
    assert end.finish_reason is FinishReason.LENGTH  # as OpenAI reports a call cut by max_tokens


def test_call_grammar_schema_limits_to_the_named_tool() -> None:
    named = call_grammar_schema([WEATHER, TIME], ToolChoice(mode=ToolChoiceMode.FUNCTION, name="get_time"))
    assert named["properties"]["name"] == {"const": "get_time"}
    either = call_grammar_schema([WEATHER, TIME], ToolChoice(mode=ToolChoiceMode.REQUIRED))
    assert [v["properties"]["name"]["const"] for v in either["anyOf"]] == ["get_weather", "get_time"]


def test_system_block_lists_tools_and_the_obligation() -> None:
    block = tools_system_block([WEATHER], ToolChoice(mode=ToolChoiceMode.REQUIRED))
    assert "get_weather" in block and "must call" in block and "<tool_call>" in block


def test_template_messages_rewrite_tool_turns_for_plain_templates() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    messages = [
        Message(role=Role.USER, content="weather?"),
        Message(role=Role.ASSISTANT, tool_calls=(call,)),
        Message(role=Role.TOOL, content="sunny", tool_call_id="call_1"),
    ]
    plain = template_messages(messages, native_tools=False)
    assert plain[1] == {
        "role": "assistant",
        "content": '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
    }
    assert plain[2]["role"] == "user" and "<tool_response>" in plain[2]["content"]
    native = template_messages(messages, native_tools=True)
    assert native[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert native[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
