"""The fine-tuning JSONL loader: OpenAI's chat format, checked line by line."""

from __future__ import annotations

import json

import pytest

from mindfu_core.domain.chat import Role
from mindfu_core.errors import InvalidRequest
from mindfu_core.services.dataset import read_chat_jsonl

GOOD = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"c": 1}'}}
            ],
        },
        {"role": "tool", "content": "12C", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "12 degrees."},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
}


def test_good_lines_parse_and_blank_lines_are_skipped() -> None:
    (example,) = list(read_chat_jsonl([json.dumps(GOOD), "", "  "]))
    assert [m.role for m in example.messages] == [
        Role.SYSTEM,
        Role.USER,
        Role.ASSISTANT,
        Role.TOOL,
        Role.ASSISTANT,
    ]
    assert example.messages[2].tool_calls[0].name == "weather"
    assert example.tools[0]["function"]["name"] == "weather"


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("{nope", "not JSON"),
        (json.dumps({"messages": []}), "non-empty"),
        (json.dumps({"messages": [{"role": "user", "content": "hi"}]}), "assistant message"),
        (json.dumps({"messages": [{"role": "robot", "content": "hi"}]}), "unknown role"),
        (
            json.dumps(
                {"messages": [{"role": "tool", "content": "x", "tool_call_id": "c9"}, GOOD["messages"][4]]}
            ),
            "unknown tool call",
        ),
        (
            json.dumps(
                {
                    "messages": [
                        {
                            "role": "assistant",
                            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{bad"}}],
                        }
                    ]
                }
            ),
            "not valid JSON",
        ),
    ],
)
def test_bad_lines_are_named(line: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says) as caught:
        list(read_chat_jsonl([json.dumps(GOOD), line]))
    assert caught.value.message.startswith("line 2:")
