"""End to end conversation logging: `mindfu serve` (SmolLM2, SQLite) with the openai SDK, read back over the
conversations API, and exported as fine-tuning JSONL that the training loader accepts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from mindfu_core.services.dataset import read_chat_jsonl
from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
HEADER = "x-mindfu-conversation-id"
FACT = "The Orvanti glacier is guarded by a heron called Miss Pemberton."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("conversations")) as running:
        yield running


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def logged(server: Server, conversation_id: str, completions: int) -> dict[str, Any]:
    """The conversation once ``completions`` of its completions are written (the writer runs behind)."""
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(f"{server.base_url}/conversations/{conversation_id}", timeout=10)
        if response.status_code == 200 and len(response.json()["completions"]) >= completions:
            return response.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"conversation {conversation_id} not logged: {response.text}"
        time.sleep(0.1)


def test_a_multi_turn_chat_is_one_conversation(server: Server, client: openai.OpenAI) -> None:
    history: list[Any] = [{"role": "user", "content": "Name a colour."}]
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=history, max_tokens=8, temperature=0, extra_body={"mindfu": {"rag": False}}
    )
    first = raw.parse()
    conversation_id = raw.headers[HEADER]
    assert (first.model_extra or {})["mindfu"]["conversation_id"] == conversation_id
    history += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Another one."},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=history, max_tokens=8, temperature=0, extra_body={"mindfu": {"rag": False}}
    )
    second = raw.parse()
    assert raw.headers[HEADER] == conversation_id
    conversation = logged(server, conversation_id, 2)
    assert [m["content"] for m in conversation["messages"]] == [
        "Name a colour.",
        first.choices[0].message.content,
        "Another one.",
        second.choices[0].message.content,
    ]
    completions = conversation["completions"]
    assert [c["id"] for c in completions] == [first.id, second.id]
    assert all(c["status"] == "ok" for c in completions)
    assert second.usage is not None
    assert completions[1]["usage"]["completion_tokens"] == second.usage.completion_tokens
    assert completions[1]["usage"]["prompt_tokens"] == second.usage.prompt_tokens


def test_a_stream_is_logged_with_usage_and_ttft(server: Server, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    conversation_id = (chunks[0].model_extra or {})["mindfu"]["conversation_id"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = next(c.usage for c in chunks if c.usage is not None)
    (completion,) = logged(server, conversation_id, 1)["completions"]
    assert completion["id"] == chunks[0].id and completion["status"] == "ok"
    assert completion["choices"][0]["message"]["content"] == text
    assert completion["usage"]["completion_tokens"] == usage.completion_tokens
    assert 0 < completion["ttft_ms"] <= completion["latency_ms"]


def test_a_cancelled_stream_is_logged_as_cancelled(server: Server) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a long story about the sea."}],
        "max_tokens": 400,
        "stream": True,
    }
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=60) as response:
        conversation_id = response.headers[HEADER]
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break  # one chunk, then hang up
    (completion,) = logged(server, conversation_id, 1)["completions"]
    assert completion["status"] == "cancelled"
    assert completion["usage"]["completion_tokens"] < 400


def test_retrieved_chunks_and_feedback_are_kept(server: Server, client: openai.OpenAI) -> None:
    upload = httpx.post(
        f"{server.base_url}/documents/upload", files={"file": ("glacier.txt", FACT.encode())}, timeout=120
    )
    assert upload.status_code in (200, 201), upload.text
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Who guards the Orvanti glacier?"}],
        max_tokens=16,
        temperature=0,
    )
    conversation_id = raw.headers[HEADER]
    (completion,) = logged(server, conversation_id, 1)["completions"]
    assert completion["retrieved"][0]["document_id"] == upload.json()["id"]
    rated = httpx.post(
        f"{server.base_url}/conversations/{conversation_id}/feedback",
        json={"rating": 1, "comment": "right"},
        timeout=10,
    )
    assert rated.status_code == 200, rated.text
    assert logged(server, conversation_id, 1)["rating"] == 1
    bad = httpx.post(
        f"{server.base_url}/conversations/{conversation_id}/feedback", json={"rating": 9}, timeout=10
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rating"
    missing = httpx.get(f"{server.base_url}/conversations/conv_nope", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_the_export_is_training_data(server: Server, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Say yes."}], max_tokens=4, temperature=0
    )
    logged(server, raw.headers[HEADER], 1)
    with httpx.stream("GET", f"{server.base_url}/conversations/export", timeout=60) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    examples = list(read_chat_jsonl(lines))
    assert examples and len(examples) == len([line for line in lines if line.strip()])
    assert any(m.content == "Say yes." for e in examples for m in e.messages)
