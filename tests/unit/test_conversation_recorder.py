"""ChatService with a ConversationRecorder: what gets recorded, with which status, in which conversation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mindfu_core.domain.chat import ChatRequest, Message, Role
from mindfu_core.domain.conversations import CallContext, CompletionRecord, CompletionStatus, chain_hashes
from mindfu_core.errors import Overloaded
from mindfu_core.services.chat import ChatService
from mindfu_core.services.conversations import ConversationRecorder
from tests.fakes import Reply, ScriptedEngine


class ListLog:
    def __init__(self) -> None:
        self.records: list[CompletionRecord] = []

    async def submit(self, record: CompletionRecord) -> None:
        self.records.append(record)

    async def flush(self, within: float) -> bool:
        return True


class SlowLookups:
    """A store whose lookups take far longer than the recorder waits."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked = 0

    async def find_by_head(self, head_hash: str, tenant: str) -> str | None:
        self.asked += 1
        await asyncio.sleep(5)
        return self.answer

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def ask(text: str, *history: Message) -> ChatRequest:
    return ChatRequest(model="scripted", messages=(*history, Message(role=Role.USER, content=text)))


async def settle(recorder: ConversationRecorder) -> None:
    await asyncio.sleep(0)
    await recorder.drain()


async def test_a_cancelled_stream_is_recorded_as_cancelled_with_what_was_generated() -> None:
    log = ListLog()
    recorder = ConversationRecorder(log)
    service = ChatService([ScriptedEngine([Reply(text="a b c d e f")], token_delay=0.01)], recorder=recorder)
    stream = await service.stream(ask("go"), CallContext(api_key_id="key_1"))
    assert (await anext(stream)).content == ""  # accepted
    first = await anext(stream)
    assert first.content == "a"
    await stream.aclose()
    await settle(recorder)
    (record,) = log.records
    assert record.status is CompletionStatus.CANCELLED and record.id == stream.id
    assert record.responses[0].content == "a" and record.api_key_id == "key_1"
    assert record.conversation_id == stream.conversation_id


async def test_a_cancelled_completion_is_recorded_as_cancelled() -> None:
    log = ListLog()
    recorder = ConversationRecorder(log)
    service = ChatService([ScriptedEngine([Reply(text="a b c d e f")], token_delay=0.05)], recorder=recorder)
    task = asyncio.ensure_future(service.complete(ask("go")))
    await asyncio.sleep(0.08)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await settle(recorder)
    assert [r.status for r in log.records] == [CompletionStatus.CANCELLED]


async def test_a_finished_stream_is_kept_before_it_ends() -> None:
    log = ListLog()
    service = ChatService([ScriptedEngine([Reply(text="x y")])], recorder=ConversationRecorder(log))
    stream = await service.stream(ask("go"))
    deltas = [d async for d in stream]
    assert deltas and len(log.records) == 1  # recorded before the last delta was handed on
    assert log.records[0].status is CompletionStatus.OK
    assert log.records[0].ttft_ms is not None


async def test_follow_ups_find_their_conversation_and_slow_lookups_do_not_wait() -> None:
    log = ListLog()
    store = SlowLookups("conv_from_db")
    recorder = ConversationRecorder(log, store, lookup_timeout=0.05)  # type: ignore[arg-type]
    service = ChatService([ScriptedEngine([Reply(text="hi")])], recorder=recorder)
    first = await service.complete(ask("hello"))
    reply = first.choices[0].message
    second = await service.complete(ask("more", Message(role=Role.USER, content="hello"), reply))
    assert second.conversation_id == first.conversation_id and store.asked == 0  # remembered
    loop = asyncio.get_running_loop()
    started = loop.time()
    unknown = Message(role=Role.ASSISTANT, content="something this process never said")
    third = await service.complete(ask("more", Message(role=Role.USER, content="x"), unknown))
    assert store.asked == 1 and loop.time() - started < 2  # the lookup gave up, the chat went on
    assert third.conversation_id not in (None, first.conversation_id, "conv_from_db")


async def test_text_completions_and_opted_out_requests_are_not_recorded() -> None:
    log = ListLog()
    service = ChatService([ScriptedEngine()], recorder=ConversationRecorder(log))
    result = await service.complete(ask("hello"), CallContext(log=False))
    assert result.conversation_id is None and log.records == []


def test_chain_hashes_ignore_what_clients_do_not_echo() -> None:
    plain = Message(role=Role.ASSISTANT, content=None)
    empty = Message(role=Role.ASSISTANT, content="")
    assert chain_hashes([plain]) == chain_hashes([empty])
    assert chain_hashes([plain]) != chain_hashes([Message(role=Role.USER, content="")])


async def test_retention_deletes_conversations_older_than_the_setting() -> None:
    from datetime import UTC, datetime, timedelta

    from mindfu_adapters.store.memory_conversations import InMemoryConversationStore
    from mindfu_core.services.conversations import ConversationService

    store = InMemoryConversationStore()
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for days in (1, 29, 31, 90):
        await store.record(
            [
                CompletionRecord(
                    id=f"chatcmpl-{days}",
                    conversation_id=f"conv_{days}",
                    created_at=now - timedelta(days=days),
                    model="m",
                    messages=(Message(role=Role.USER, content="hi"),),
                )
            ]
        )
    assert await ConversationService(store).apply_retention(now) == 0  # no retention: keep everything
    assert await ConversationService(store, retention_days=30).apply_retention(now) == 2
    assert sorted(s.id for s in (await store.list()).items) == ["conv_1", "conv_29"]


async def test_a_continuation_comes_from_memory_then_from_the_store() -> None:
    from mindfu_adapters.store.memory_conversations import InMemoryConversationStore
    from mindfu_core.errors import NotFound

    log = ListLog()
    store = InMemoryConversationStore()
    service = ChatService([ScriptedEngine([Reply(text="hi Ada")])], recorder=ConversationRecorder(log, store))
    first = await service.complete(ask("I am Ada"))
    continued = CallContext(previous_completion_id=first.id)
    second = await service.complete(ask("who am I?"), continued)
    assert second.conversation_id == first.conversation_id
    assert [m.content for m in log.records[-1].messages] == ["I am Ada", "hi Ada", "who am I?"]

    await store.record(log.records)  # what the log writer does; a fresh process remembers nothing
    later = ChatService([ScriptedEngine([Reply(text="x")])], recorder=ConversationRecorder(ListLog(), store))
    third = await later.complete(ask("again?"), CallContext(previous_completion_id=second.id))
    assert third.conversation_id == first.conversation_id
    with pytest.raises(NotFound) as missing:
        await later.complete(ask("x"), CallContext(previous_completion_id="chatcmpl-nope"))
    assert missing.value.param == "previous_response_id"


class Busy(ScriptedEngine):
    async def complete(self, request: Any) -> Any:
        raise Overloaded("all slots busy", retry_after=3)

    async def stream(self, request: Any) -> Any:
        raise Overloaded("all slots busy", retry_after=3)
        yield  # an async generator that raises at its first step


async def test_a_request_turned_away_with_429_is_not_a_conversation() -> None:
    log = ListLog()
    recorder = ConversationRecorder(log)
    service = ChatService([Busy()], recorder=recorder)
    with pytest.raises(Overloaded):
        await service.complete(ask("go"))
    stream = await service.stream(ask("go"))
    with pytest.raises(Overloaded):
        async for _ in stream:
            pass
    await settle(recorder)
    assert log.records == []
