"""End to end: ``mindfu serve`` with its engine switched to vLLM by settings alone (SmolLM2 from the weights
``make install`` converted, a LoRA adapter beside it), used through the official openai SDK: the SDK suite
of the embedded engine runs again here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.server import Server, running_server
from tests.e2e.test_openai_sdk import (  # noqa: F401 (collected here, against the vLLM-backed server)
    MODEL,
    QUESTION,
    client,
    test_chat_answers_a_factual_question,
    test_error_cases_raise_the_matching_sdk_exceptions,
    test_json_object_output_parses,
    test_json_schema_output_validates,
    test_named_tool_choice_streams_the_call,
    test_streamed_chat,
    test_text_completion_with_stop,
    test_tool_call_round_trip,
)
from tests.vllm_tier.conftest import CONTEXT

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, lora_adapter: Path) -> Iterator[Server]:
    env = {
        "MINDFU_LLM__BACKEND": "vllm",
        "MINDFU_LLM__DTYPE": "float32",
        "MINDFU_LLM__CONTEXT_LENGTH": str(CONTEXT),
        "MINDFU_LLM__SLOTS": "4",
        "MINDFU_LLM__LORA_ADAPTERS": json.dumps({"smol-lora": str(lora_adapter)}),
    }
    with running_server(tmp_path_factory.mktemp("vllm-sdk"), env=env, timeout=300) as running:
        yield running


def sdk(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="not-needed", max_retries=0, timeout=120)


def test_models_and_the_engine(server: Server) -> None:
    api = sdk(server)
    assert [m.id for m in api.models.list().data] == [MODEL, "smol-lora"]
    engine = server.engine()
    assert engine["model"] == MODEL and engine["slots"] == 4


def test_the_adapter_answers_by_its_own_name(server: Server) -> None:
    api = sdk(server)

    def ask(model: str) -> str:
        reply = api.chat.completions.create(
            model=model,
            messages=QUESTION,  # type: ignore[arg-type]
            max_tokens=16,
            temperature=0,
        )
        assert reply.model == model
        return reply.choices[0].message.content or ""

    assert "Paris" in ask(MODEL)
    assert ask("smol-lora") != ask(MODEL)
