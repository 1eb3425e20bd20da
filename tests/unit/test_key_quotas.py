"""Per-key quotas: requests in flight and tokens a minute, with a Retry-After that says when."""

from __future__ import annotations

import pytest

from mindfu_core import ChatRequest, Message, Role
from mindfu_core.domain.conversations import CallContext
from mindfu_core.errors import Overloaded
from mindfu_core.services.chat import ChatService
from mindfu_core.services.quotas import KeyQuotas
from tests.fakes import Reply, ScriptedEngine

USER = (Message(role=Role.USER, content="hi"),)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_with_its_share_in_flight_waits_for_one_to_finish() -> None:
    quotas = KeyQuotas(concurrency=2)
    first, second = quotas.admit("key_a"), quotas.admit("key_a")
    with pytest.raises(Overloaded) as refused:
        quotas.admit("key_a")
    assert refused.value.code == "rate_limit_exceeded" and refused.value.retry_after == 1.0
    other = quotas.admit("key_b")  # another key is not held back by it
    first.release()
    first.release()  # a second release changes nothing
    third = quotas.admit("key_a")
    for lease in (second, third, other):
        lease.release()
    assert quotas._keys == {}  # keys at rest hold no memory
    for _ in range(10):  # callers without a key are not bounded
        quotas.admit(None)


def test_tokens_a_minute_with_the_wait_until_the_oldest_age_out() -> None:
    clock = Clock()
    quotas = KeyQuotas(tokens_per_minute=1000, clock=clock)
    quotas.admit("key_a").release(600)
    clock.now += 20
    quotas.admit("key_a").release(500)
    clock.now += 10
    with pytest.raises(Overloaded) as refused:  # 1100 in the last minute
        quotas.admit("key_a")
    assert refused.value.retry_after == 30.0  # the 600 leave 60 s after they were spent
    clock.now += 30
    quotas.admit("key_a").release(0)  # 500 left in the window: under the share again


async def test_the_chat_service_charges_each_key_its_tokens_and_refuses_past_its_share() -> None:
    engine = ScriptedEngine([Reply(text="one two three")])
    chat = ChatService([engine], quotas=KeyQuotas(tokens_per_minute=5))
    key = CallContext(api_key_id="key_a")
    request = ChatRequest(model="scripted", messages=USER)
    await chat.complete(request, key)  # a prompt and three tokens: past 5
    with pytest.raises(Overloaded):
        await chat.complete(request, key)
    stream = await chat.stream(request, CallContext(api_key_id="key_b"))
    async for _ in stream:
        pass
    with pytest.raises(Overloaded):
        await chat.stream(request, CallContext(api_key_id="key_b"))
    assert (await chat.complete(request)).choices  # no key: no bound


async def test_a_stream_holds_its_keys_place_until_it_ends() -> None:
    engine = ScriptedEngine([Reply(text="a b c")], token_delay=0.01)
    chat = ChatService([engine], quotas=KeyQuotas(concurrency=1))
    key = CallContext(api_key_id="key_a")
    stream = await chat.stream(ChatRequest(model="scripted", messages=USER), key)
    await anext(stream)
    with pytest.raises(Overloaded):
        await chat.complete(ChatRequest(model="scripted", messages=USER), key)
    await stream.aclose()  # the client left: its place is free
    assert (await chat.complete(ChatRequest(model="scripted", messages=USER), key)).choices
