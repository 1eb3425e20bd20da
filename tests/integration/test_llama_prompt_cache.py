"""LlamaCppEngine's prompt reuse on SmolLM2: the slot holding the longest prefix serves the request, a cancel
stops the prompt's computation within one chunk, and two consecutive agent turns through the HTTP APIs (Claude
Code's billing header changing, retrieval grounding the question) share every token of the first turn's
prompt."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mindfu_adapters.llm.backends import default_model_path
from mindfu_adapters.llm.llama_cpp import LlamaCppConfig, LlamaCppEngine
from mindfu_core import ChatRequest, Message, Role, SamplingParams

pytestmark = pytest.mark.slow

CLAUDE_CODE = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
MAP = {"claude-*": "smollm2"}


def smollm2(**kw: Any) -> LlamaCppEngine:
    config = {"model_id": "smollm2", "context_length": 8192, "slots": 1, **kw}
    return LlamaCppEngine(LlamaCppConfig(model_path=default_model_path(), **config))


def session(name: str, *turns: str) -> ChatRequest:
    system = f"You are agent {name}. " + " ".join(f"{name} rule {i}: be precise." for i in range(60))
    messages = [Message(role=Role.SYSTEM, content=system)]
    for number, text in enumerate(turns):
        if number:
            messages.append(Message(role=Role.ASSISTANT, content=f"Done with step {number}."))
        messages.append(Message(role=Role.USER, content=text))
    return ChatRequest(
        model="smollm2", messages=tuple(messages), sampling=SamplingParams(max_tokens=4, temperature=0.0)
    )


async def test_each_session_goes_back_to_the_slot_that_holds_its_prefix() -> None:
    """A1, B1, B2, A2 on two slots: least-recently-used choice alone would send B2 and A2 to each other's
    slot (and last-in-first-out would have let B1 overwrite A1); by prefix each finds its own."""
    engine = smollm2(slots=2)
    try:
        a1 = await engine.complete(session("alpha", "step one"))
        b1 = await engine.complete(session("bravo", "step one"))
        b2 = await engine.complete(session("bravo", "step one", "step two"))
        a2 = await engine.complete(session("alpha", "step one", "step two"))
    finally:
        await engine.aclose()
    assert a1.usage.cached_tokens == b1.usage.cached_tokens == 0
    assert b2.usage.cached_tokens >= b1.usage.prompt_tokens
    assert a2.usage.cached_tokens >= a1.usage.prompt_tokens


async def test_a_prefix_evicted_from_the_only_slot_comes_back_from_host_memory() -> None:
    """One slot, two sessions taking turns: each turn evicts the other session's prefix, which the host
    cache keeps and restores (without it, every turn would compute its whole prompt again)."""
    kept, plain = smollm2(prompt_cache_bytes=256 << 20), smollm2()
    try:
        for engine in (kept, plain):
            a1 = await engine.complete(session("alpha", "step one"))
            await engine.complete(session("bravo", "step one"))
            a2 = await engine.complete(session("alpha", "step one", "step two"))
            if engine is kept:
                assert a2.usage.cached_tokens >= a1.usage.prompt_tokens
                stats = engine.stats()
                assert stats.prompt_cache_hits == 1 and 0 < stats.prompt_cache_bytes <= 256 << 20
            else:
                assert a2.usage.cached_tokens < 32  # the chat template's opening, no more
    finally:
        await kept.aclose()
        await plain.aclose()


async def test_a_cancel_stops_the_prompt_computation_within_a_chunk() -> None:
    """An abandoned request with a long prompt frees its slot without computing the rest of the prompt."""
    engine = smollm2(batch_size=16)
    try:
        long = ChatRequest(
            model="smollm2",
            messages=(Message(role=Role.USER, content=" ".join(f"item {i} is fine." for i in range(700))),),
            sampling=SamplingParams(max_tokens=4),
        )
        stream = engine.stream(long)
        assert not (await anext(stream)).content  # accepted at once, before the prompt is computed
        pending = asyncio.ensure_future(anext(stream))
        held = engine._slots[0].tokens  # what the slot's sequence holds, growing chunk by chunk
        while len(held) < 64:  # the prompt is being computed, chunk by chunk
            await asyncio.sleep(0.001)
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await stream.aclose()  # type: ignore[attr-defined]
        stopped_at = len(held)
        for _ in range(500):
            if not engine.stats().active:
                break
            await asyncio.sleep(0.01)
        assert engine.stats().active == 0
        prompt = await engine.count_tokens(long.messages)
        assert len(held) <= stopped_at + 16 < prompt - 1  # at most one more chunk after the cancel
        quick = await asyncio.wait_for(engine.complete(session("after", "hi")), 60)
        assert quick.choices[0].message.content is not None
    finally:
        await engine.aclose()


async def test_a_cancel_stops_the_step_it_is_in_and_the_other_streams_go_on() -> None:
    """A chunk of 512 prompt rows takes seconds on two cores (more the deeper it sits): a cancel aborts the
    running llama_decode instead of waiting for it, and a stream decoding in the same step redoes its row
    in the next one, its text the same as alone."""
    engine = smollm2(slots=2, batch_size=512)
    scheduler = engine._scheduler
    other = ChatRequest(
        model="smollm2",
        messages=(Message(role=Role.USER, content="Count from one to twenty."),),
        sampling=SamplingParams(max_tokens=40, temperature=0.0),
    )
    long = ChatRequest(
        model="smollm2",
        messages=(Message(role=Role.USER, content=" ".join(f"item {i} is fine." for i in range(500))),),
        sampling=SamplingParams(max_tokens=4),
    )
    try:
        alone = (await engine.complete(other)).choices[0].message.content
        running = asyncio.ensure_future(engine.complete(other))
        while scheduler.steps < 3:  # the other stream is decoding
            await asyncio.sleep(0.001)
        stream = engine.stream(long)
        await anext(stream)
        pending = asyncio.ensure_future(anext(stream))
        while not any(not job.decoding and len(job.todo) > 64 for job in scheduler._stepping):
            await asyncio.sleep(0.0005)  # until a step with the long prompt's first chunk runs
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await stream.aclose()  # type: ignore[attr-defined]
        for _ in range(500):
            if scheduler.aborted_steps:
                break
            await asyncio.sleep(0.01)
        assert scheduler.aborted_steps == 1
        batched = await asyncio.wait_for(running, 120)
        assert batched.choices[0].message.content == alone
        assert engine.stats().active == 0
        quick = await asyncio.wait_for(engine.complete(session("after", "hi")), 60)
        assert quick.choices[0].message.content is not None
    finally:
        await engine.aclose()


@contextmanager
def closing(engine: LlamaCppEngine) -> Iterator[None]:
    """The engine closed after the block (the test app does not own an engine handed to it)."""
    try:
        yield
    finally:
        asyncio.run(engine.aclose())


def claude_code_turn(cch: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Claude Code's captured request (its system prompt, three of its tools), with billing hash ``cch``."""
    captured = json.loads((CLAUDE_CODE / "default_request.json").read_text())
    header = captured["system"][0]["text"]
    system = [{**captured["system"][0], "text": f"{header} cch={cch};"}, *captured["system"][1:]]
    return {
        "model": "claude-sonnet-5",
        "max_tokens": 8,
        "temperature": 0.0,
        "system": system,
        "tools": captured["tools"][:3],
        "messages": messages,
    }


def test_two_agent_turns_share_the_first_turns_whole_prompt(make_client: Any) -> None:
    """Claude Code's second turn (its tool's result appended) reuses every token of the first turn's prompt,
    though the billing hash changed; in both topologies (the count crosses gRPC too)."""
    engine = smollm2()
    ask = [{"role": "user", "content": "List the files in this repository."}]
    call = {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": "README.md\nsrc\ntests"}
    with closing(engine), make_client(engine, anthropic={"model_map": MAP}) as client:
        first = client.post("/v1/messages", json=claude_code_turn("a1b2c", ask))
        assert first.status_code == 200, first.text
        follow = [*ask, {"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]
        second = client.post("/v1/messages", json=claude_code_turn("f9e8d", follow))
        assert second.status_code == 200, second.text
    one, two = first.json()["usage"], second.json()["usage"]
    first_prompt = one["input_tokens"] + one["cache_read_input_tokens"]
    assert two["cache_read_input_tokens"] >= first_prompt > 1000
    assert two["input_tokens"] > 0  # the new turn itself is computed


def test_grounded_tool_loop_turns_share_the_first_turns_whole_prompt(make_client: Any) -> None:
    """With retrieval on, the context goes with the user's question, so the next turn of the agent's tool
    loop (same question, a tool result appended) keeps the whole prefix; the answer still has its sources."""
    engine = smollm2()
    fact = "The Zorblatt reactor on Kepler station runs on purple helium harvested from comet tails."
    tool = {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file of the repository.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
    system = {"role": "system", "content": "You are a careful engineer. " * 40}
    question = {"role": "user", "content": "What does the Zorblatt reactor run on?"}
    with closing(engine), make_client(engine) as client:
        uploaded = client.post("/v1/documents", json={"content": fact, "name": "reactor.md"})
        assert uploaded.status_code in (200, 201), uploaded.text
        body = {"model": "smollm2", "max_tokens": 8, "temperature": 0.0, "tools": [tool]}
        first = client.post("/v1/chat/completions", json={**body, "messages": [system, question]}).json()
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "read_file", "arguments": '{"path": "a"}'},
        }
        history = [
            system,
            question,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "nothing relevant"},
        ]
        second = client.post("/v1/chat/completions", json={**body, "messages": history}).json()
    assert first["mindfu"]["sources"][0]["name"] == "reactor.md"
    assert second["mindfu"]["sources"][0]["name"] == "reactor.md"
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= first["usage"]["prompt_tokens"] > 300
