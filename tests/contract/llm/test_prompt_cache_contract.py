"""The prompt-cache part of the LLMEngine contract, for the engines that keep computed prompts (llama.cpp on a
tiny GGUF and on SmolLM2 here; vLLM in its tier): a conversation's next turn computes only what is new,
says so in ``usage.cached_tokens``, and counts it in the engine's stats."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mindfu_core import ChatRequest, LLMEngine, Message, Role, SamplingParams
from tests.contract.llm.test_llm_engine_contract import EngineFactory, _smollm2, _tiny

RULES = " ".join(f"Rule {i}: keep change {i} small and tested." for i in range(40))


@pytest.fixture(
    params=[
        pytest.param(_tiny, id="llama-tiny"),
        pytest.param(_smollm2, id="llama-smollm2", marks=pytest.mark.slow),
    ]
)
async def make_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    engines: list[LLMEngine] = []
    build: Callable[..., LLMEngine] = request.param

    def factory(**kw: Any) -> LLMEngine:
        engines.append(build(tmp_path, **kw))
        return engines[-1]

    yield factory
    for engine in engines:
        await engine.aclose()


@pytest.fixture
def cache_block() -> int:
    """The granularity of the engine's prompt cache: llama.cpp reuses every token (but the last, computed
    again to sample); vLLM whole KV blocks (its tier overrides this)."""
    return 1


def turn(engine: LLMEngine, session: str, *messages: Message) -> ChatRequest:
    """A turn of agent ``session`` (engines that share one cache across tests, vLLM's, see each anew)."""
    system = Message(role=Role.SYSTEM, content=f"You are coding agent {session} in a repository. {RULES}")
    return ChatRequest(
        model=engine.model_info().id,
        messages=(system, *messages),
        sampling=SamplingParams(max_tokens=8, temperature=0.0, seed=1),
    )


async def test_the_next_turn_of_a_conversation_computes_only_what_is_new(
    make_engine: EngineFactory, cache_block: int
) -> None:
    engine = make_engine()
    before = engine.stats()
    session = uuid.uuid4().hex
    first = await engine.complete(turn(engine, session, Message(role=Role.USER, content="List the files.")))
    assert first.usage.cached_tokens == 0  # nothing was computed before
    answer = first.choices[0].message
    second = await engine.complete(
        turn(
            engine,
            session,
            Message(role=Role.USER, content="List the files."),
            answer,
            Message(role=Role.USER, content="Now read README.md."),
        )
    )
    # every token of the first turn's prompt is reused (to the block, where the engine caches blocks)
    assert second.usage.cached_tokens >= first.usage.prompt_tokens - cache_block
    assert second.usage.cached_tokens < second.usage.prompt_tokens
    stats = engine.stats()
    assert stats.prompt_tokens_total - before.prompt_tokens_total == (
        first.usage.prompt_tokens + second.usage.prompt_tokens
    )
    assert stats.cached_tokens_total - before.cached_tokens_total == second.usage.cached_tokens


async def test_a_different_prompt_reuses_only_the_shared_prefix(make_engine: EngineFactory) -> None:
    engine = make_engine()
    ask = Message(role=Role.USER, content="List the files.")
    first = await engine.complete(turn(engine, uuid.uuid4().hex, ask))
    other = ChatRequest(
        model=engine.model_info().id,
        messages=(Message(role=Role.USER, content="Something else entirely, with no system prompt."),),
        sampling=SamplingParams(max_tokens=4, temperature=0.0),
    )
    unrelated = await engine.complete(other)
    assert unrelated.usage.cached_tokens < min(first.usage.prompt_tokens, unrelated.usage.prompt_tokens) // 2
