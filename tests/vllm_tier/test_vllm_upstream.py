"""The OpenAIUpstreamEngine in front of vLLM's own OpenAI server (``vllm.entrypoints.openai.api_server``
on SmolLM2): the LLMEngine contract, and ``mindfu serve`` switched to that upstream by settings alone
running the openai SDK suite (JSON schemas included, which llama_cpp.server lacks).

Left out, for what this upstream does, not MindFu: the forced tool-call tests (vLLM 0.32's server answers
a forced call to SmolLM2 with arguments that are a JSON string, ``"wetet"``, not an object; MindFu's own
VllmEngine constrains the whole call and passes them), and the streamed-usage count (vLLM counts the
end-of-text token as a completion token; MindFu's engines do not)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mindfu_adapters.llm.openai_http import OpenAIUpstreamEngine, UpstreamConfig
from mindfu_core import LLMEngine
from tests.contract.llm.test_llm_engine_contract import (  # noqa: F401 (collected here, against vLLM's server)
    EngineFactory,
    test_a_stream_opens_before_its_request_gets_a_slot,
    test_cancelling_complete_frees_the_engine,
    test_complete_respects_max_tokens_and_reports_usage,
    test_count_tokens_grows_with_the_text,
    test_full_queue_is_overloaded,
    test_model_info,
    test_slots_serve_requests_concurrently,
    test_stopping_iteration_stops_generation_at_once,
    test_stream_has_one_finish_per_choice_and_usage_last,
    test_text_requests,
    test_too_long_prompt_is_context_length_exceeded,
)
from tests.e2e.server import Server, running_server
from tests.e2e.test_openai_sdk import (  # noqa: F401 (collected here, against MindFu in front of vLLM)
    MODEL,
    client,
    test_chat_answers_a_factual_question,
    test_error_cases_raise_the_matching_sdk_exceptions,
    test_json_object_output_parses,
    test_json_schema_output_validates,
    test_models,
    test_text_completion_with_stop,
)
from tests.fixtures.upstream import vllm_server
from tests.vllm_tier.conftest import CONTEXT

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def upstream_url(smollm2_hf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("vllm-server") / "vllm_server.log"
    with vllm_server(smollm2_hf, alias="smollm2", max_model_len=CONTEXT, log=log) as url:
        yield url


@pytest.fixture
async def make_engine(upstream_url: str) -> AsyncIterator[EngineFactory]:
    engines: list[LLMEngine] = []

    def factory(*, slots: int = 1, max_queue: int = 4, **_: Any) -> LLMEngine:
        config = UpstreamConfig(
            base_url=upstream_url,
            model_id="upstream",
            upstream_model="smollm2",
            context_length=CONTEXT,
            slots=slots,
            max_queue=max_queue,
            retries=0,
            clamp_max_tokens=False,
        )
        engine = OpenAIUpstreamEngine(config)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.aclose()


@pytest.fixture(scope="module")
def server(upstream_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "MINDFU_LLM__BACKEND": "openai",
        "MINDFU_LLM__BASE_URL": upstream_url,
        "MINDFU_LLM__MODEL_ID": MODEL,
        "MINDFU_LLM__UPSTREAM_MODEL": "smollm2",
        "MINDFU_LLM__CONTEXT_LENGTH": str(CONTEXT),
        "MINDFU_LLM__RETRIES": "1",
    }
    with running_server(tmp_path_factory.mktemp("vllm-upstream"), env=env) as running:
        yield running
