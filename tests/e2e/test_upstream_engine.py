"""End to end: MindFu with its engine switched by settings alone to an OpenAI-compatible upstream
(llama-cpp-python's own server on the same SmolLM2), used through the official openai SDK.

The openai-SDK tests imported below run here again against this server. The ones left out need what this
particular upstream lacks (``response_format`` ``json_schema``, ``tool_choice: required``), not MindFu.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from mindfu_adapters.llm.backends import default_model_path
from tests.e2e.server import Server, free_port, running_server
from tests.e2e.test_openai_sdk import (  # noqa: F401 (collected here, against the upstream-backed server)
    MODEL,
    QUESTION,
    client,
    test_chat_answers_a_factual_question,
    test_error_cases_raise_the_matching_sdk_exceptions,
    test_json_object_output_parses,
    test_models,
    test_named_tool_choice_streams_the_call,
    test_streamed_chat,
    test_text_completion_with_stop,
)
from tests.fixtures.upstream import llama_cpp_server

pytestmark = pytest.mark.slow


def upstream_env(url: str) -> dict[str, str]:
    return {
        "MINDFU_LLM__BACKEND": "openai",
        "MINDFU_LLM__BASE_URL": url,
        "MINDFU_LLM__MODEL_ID": MODEL,
        "MINDFU_LLM__UPSTREAM_MODEL": "smollm2",
        "MINDFU_LLM__RETRIES": "1",
    }


@pytest.fixture(scope="module")
def upstream_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upstream") / "llama_cpp_server.log"


@pytest.fixture(scope="module")
def server(upstream_log: Path) -> Iterator[Server]:
    with (
        llama_cpp_server(default_model_path(), alias="smollm2", n_ctx=4096, log=upstream_log) as url,
        running_server(upstream_log.parent, env=upstream_env(url)) as running,
    ):
        yield running


def test_the_answers_come_from_the_upstream(server: Server, upstream_log: Path) -> None:
    sdk = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=120)
    before = upstream_log.read_text().count("POST /v1/chat/completions")
    sdk.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=4)  # type: ignore[arg-type]
    assert upstream_log.read_text().count("POST /v1/chat/completions") == before + 1
    engine = server.ready()["engines"][0]
    assert engine["model"] == MODEL and engine["slots"] == 16  # the upstream engine's default


def test_a_down_upstream_is_503_with_retry_after_and_recovers_by_itself(tmp_path: Path) -> None:
    """MindFu starts with its upstream down, answers 503 + Retry-After, and serves once it is up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    with running_server(tmp_path, env=upstream_env(url)) as mindfu:
        sdk = openai.OpenAI(base_url=mindfu.base_url, api_key="x", max_retries=0, timeout=60)
        down = httpx.post(
            f"{mindfu.base_url}/chat/completions",
            json={"model": MODEL, "messages": QUESTION, "max_tokens": 4},
            timeout=60,
        )
        assert down.status_code == 503 and int(down.headers["retry-after"]) >= 1
        assert down.json()["error"]["code"] == "upstream_unavailable"
        with llama_cpp_server(default_model_path(), alias="smollm2", n_ctx=4096, port=port):
            reply = sdk.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=24, temperature=0)  # type: ignore[arg-type]
            assert "Paris" in (reply.choices[0].message.content or "")


def test_a_client_that_goes_away_closes_the_upstream_stream(server: Server) -> None:
    """Closing the stream at MindFu closes it upstream. The upstream generates one request at a time, so
    had it gone on with the abandoned 4000 tokens, the next request would wait for them."""
    sdk = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=300)

    def short_request() -> float:
        started = time.monotonic()
        reply = sdk.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=8, temperature=0)  # type: ignore[arg-type]
        assert reply.choices[0].message.content
        return time.monotonic() - started

    baseline = short_request()
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
            "max_tokens": 4000,
            "stream": True,
            "temperature": 1.0,
            "min_p": 0.0,
        },
        timeout=60,
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                break
    # 4000 tokens take SmolLM2 30 s or more on two cores; a short request takes about a second
    assert short_request() < 3 * baseline + 10
