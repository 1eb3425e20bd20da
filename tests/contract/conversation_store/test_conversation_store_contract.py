"""The ConversationStore contract: in memory, SQLite and PostgreSQL (the real server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mindfu_adapters.store.conversations import SqlConversationStore
from mindfu_adapters.store.memory_conversations import InMemoryConversationStore
from mindfu_adapters.store.sql import Database
from mindfu_core.domain.chat import FinishReason, Message, Role, ToolCall, Usage
from mindfu_core.domain.conversations import (
    CompletionRecord,
    CompletionStatus,
    ConversationFilter,
    Feedback,
    RetrievedChunk,
    chain_hashes,
    foreign_branch,
)
from mindfu_core.errors import InvalidRequest, NotFound
from mindfu_core.ports.conversation_store import ConversationStore
from tests.postgres import fresh_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOOLS = [{"type": "function", "function": {"name": "weather", "description": "", "parameters": {}}}]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConversationStore]:
    if request.param == "memory":
        yield InMemoryConversationStore()
        return
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'conversations.db'}")
        await database.migrate()
        yield SqlConversationStore(database, page_size=7)
        await database.aclose()
        return
    async with fresh_database() as url:
        database = Database(url)
        await database.migrate()
        yield SqlConversationStore(database, page_size=7)
        await database.aclose()


def user(text: str) -> Message:
    return Message(role=Role.USER, content=text)


def assistant(text: str | None, *calls: ToolCall) -> Message:
    return Message(role=Role.ASSISTANT, content=text, tool_calls=calls)


def record(
    number: int,
    messages: tuple[Message, ...],
    reply: Message | None = None,
    *,
    conversation: str = "conv_a",
    status: CompletionStatus = CompletionStatus.OK,
    model: str = "smollm2",
    minutes: int | None = None,
    user_name: str | None = "alice",
    tools: bool = False,
) -> CompletionRecord:
    reply = reply if reply is not None else assistant(f"answer {number}")
    parameters: dict[str, object] = {"temperature": 0.5, "max_tokens": 64, "n": 1}
    if tools:
        parameters["tools"] = TOOLS
    return CompletionRecord(
        id=f"chatcmpl-{number:04d}",
        conversation_id=conversation,
        created_at=T0 + timedelta(minutes=number if minutes is None else minutes),
        model=model,
        messages=messages,
        responses=(reply,),
        finish_reasons=(FinishReason.TOOL_CALLS if reply.tool_calls else FinishReason.STOP,),
        parameters=parameters,
        usage=Usage(prompt_tokens=10 + number, completion_tokens=5, cached_tokens=number),
        latency_ms=120.5,
        ttft_ms=12.25,
        retrieved=(RetrievedChunk(document_id="doc-1", chunk_index=2, score=0.75),),
        status=status,
        error="EngineFailure: boom" if status is CompletionStatus.ERROR else None,
        api_key_id="key_0123456789abcdef",
        user=user_name,
    )


async def test_a_record_round_trips(store: ConversationStore) -> None:
    first = record(1, (Message(role=Role.SYSTEM, content="be brief"), user("hi")))
    assert await store.record([first]) == 1
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert conversation.messages == first.transcript
    summary = conversation.summary
    assert (summary.id, summary.model, summary.message_count, summary.completion_count) == (
        "conv_a",
        "smollm2",
        3,
        1,
    )
    assert summary.last_status is CompletionStatus.OK
    assert summary.title == "hi"
    assert summary.created_at == first.created_at and summary.updated_at == first.created_at
    assert summary.user == "alice" and summary.api_key_id == "key_0123456789abcdef"
    (completion,) = conversation.completions
    assert completion.id == first.id and completion.message_count == 2
    assert completion.responses == first.responses
    assert completion.finish_reasons == (FinishReason.STOP,)
    assert completion.usage == first.usage
    assert completion.latency_ms == pytest.approx(120.5) and completion.ttft_ms == pytest.approx(12.25)
    assert completion.retrieved == first.retrieved
    assert dict(completion.parameters) == {"temperature": 0.5, "max_tokens": 64, "n": 1}
    assert completion.status is CompletionStatus.OK and completion.error is None
    assert await store.get("conv_missing") is None


async def test_writes_are_idempotent_on_the_completion_id(store: ConversationStore) -> None:
    first = record(1, (user("hi"),))
    assert await store.record([first]) == 1
    assert await store.record([first]) == 0
    assert await store.record([first, first]) == 0
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert len(conversation.messages) == 2 and len(conversation.completions) == 1


async def test_a_follow_up_appends_and_moves_the_head(store: ConversationStore) -> None:
    first = record(1, (user("hi"),))
    second = record(2, (*first.transcript, user("and then?")))
    assert await store.record([first, second]) == 2  # in order, within one batch
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert conversation.messages == second.transcript
    assert [c.id for c in conversation.completions] == [first.id, second.id]
    assert [c.message_count for c in conversation.completions] == [1, 3]
    assert conversation.summary.updated_at == second.created_at
    assert await store.find_by_head(chain_hashes(second.transcript)[-1], "default") == "conv_a"
    assert await store.find_by_head(chain_hashes(first.transcript)[-1], "default") is None
    assert await store.find_by_head("0" * 64, "default") is None
    assert await store.find_completion(first.id) == "conv_a"
    assert await store.find_completion(second.id) == "conv_a"
    assert await store.find_completion("chatcmpl-missing") is None


async def test_an_edited_turn_replaces_the_tail(store: ConversationStore) -> None:
    first = record(1, (user("hi"),))
    second = record(2, (*first.transcript, user("tell me about cats")))
    edited = record(3, (*first.transcript, user("tell me about dogs")))
    await store.record([first, second])
    await store.record([edited])
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert conversation.messages == edited.transcript
    assert len(conversation.completions) == 3  # the replaced reply stays in its completion
    assert conversation.completions[1].responses == second.responses


async def test_a_repeated_prefix_keeps_the_history_and_an_edit_in_a_batch_rewinds_its_statistics(
    store: ConversationStore,
) -> None:
    first = record(1, (user("hi"),), assistant("a reply of thirty characters!!"))
    forty = assistant("a longer reply of forty characters here.")
    second = record(2, (*first.transcript, user("more")), forty)
    # a failed retry of the first turn: its transcript (the request alone) is a prefix of the stored history
    retry = record(3, (user("hi"),), status=CompletionStatus.ERROR)
    await store.record([first, second])
    await store.record([retry])
    kept = await store.get("conv_a")
    assert kept is not None and kept.messages == second.transcript and len(kept.completions) == 3

    async def found(**where: object) -> bool:
        page = await store.list(ConversationFilter(**where), limit=10)  # type: ignore[arg-type]
        return [item.id for item in page.items] == ["conv_a"]

    assert await found(min_turns=2, min_response_chars=30, max_response_chars=40)
    edited = record(4, (user("hi"),), assistant("ok"))
    follow = record(5, (*edited.transcript, user("and?")), assistant("fine"))
    await store.record([edited, follow])  # the edit and its follow-up in one batch
    conversation = await store.get("conv_a")
    assert conversation is not None and conversation.messages == follow.transcript
    assert conversation.summary.message_count == 4 and conversation.summary.title == "hi"
    assert await found(min_turns=2, max_response_chars=4) and not await found(min_turns=3)
    assert await store.find_by_head(chain_hashes(follow.transcript)[-1], "default") == "conv_a"


async def test_tool_calls_and_tool_results_are_kept(store: ConversationStore) -> None:
    call = ToolCall(id="call_1", name="weather", arguments='{"city": "Paris"}')
    first = record(1, (user("weather?"),), assistant(None, call), tools=True)
    result = Message(role=Role.TOOL, content='{"temp": 21}', tool_call_id="call_1")
    second = record(2, (*first.transcript, result), tools=True)
    await store.record([first, second])
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert conversation.messages == second.transcript
    assert conversation.messages[1].tool_calls == (call,)
    assert conversation.messages[1].content is None
    assert [dict(t) for t in conversation.tools] == TOOLS


async def test_failed_and_cancelled_completions_keep_the_request_but_not_the_reply(
    store: ConversationStore,
) -> None:
    failed = record(1, (user("hi"),), assistant("partial"), status=CompletionStatus.ERROR)
    await store.record([failed])
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert conversation.messages == (user("hi"),)
    assert conversation.summary.last_status is CompletionStatus.ERROR
    assert conversation.completions[0].error == "EngineFailure: boom"
    assert conversation.completions[0].responses == (assistant("partial"),)
    retried = record(2, (user("hi"),))
    await store.record([retried])
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert conversation.messages == retried.transcript
    assert conversation.summary.last_status is CompletionStatus.OK


async def many(store: ConversationStore, count: int) -> list[CompletionRecord]:
    records = []
    for number in range(count):
        turns = (user(f"question {number}"),)
        reply = assistant("x" * (10 + number))
        records.append(
            record(
                number,
                turns,
                reply,
                conversation=f"conv_{number:03d}",
                model="big" if number % 3 == 0 else "small",
                status=CompletionStatus.CANCELLED if number % 5 == 0 else CompletionStatus.OK,
                user_name=f"user{number % 2}",
            )
        )
    await store.record(records)
    return records


async def test_listing_pages_newest_first_without_gaps(store: ConversationStore) -> None:
    await many(store, 23)
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list(limit=5, cursor=cursor)
        seen.extend(item.id for item in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"conv_{n:03d}" for n in reversed(range(23))]
    with pytest.raises(InvalidRequest):
        await store.list(cursor="not-a-cursor")


async def test_listing_filters(store: ConversationStore) -> None:
    await many(store, 12)

    async def ids(**where: object) -> list[int]:
        page = await store.list(ConversationFilter(**where), limit=100)  # type: ignore[arg-type]
        return sorted(int(item.id.removeprefix("conv_")) for item in page.items)

    assert await ids(model="big") == [0, 3, 6, 9]
    assert await ids(status=CompletionStatus.CANCELLED) == [0, 5, 10]
    assert await ids(since=T0 + timedelta(minutes=10)) == [10, 11]
    assert await ids(until=T0 + timedelta(minutes=2)) == [0, 1]
    assert await ids(user="user1", model="small") == [1, 5, 7, 11]
    assert await ids(min_response_chars=19) == [9, 11]  # no reply, no length: 10 was cancelled
    assert await ids(max_response_chars=11) == [1]  # conv 0 was cancelled: its reply is not a message
    assert await ids(min_turns=1, max_response_chars=12) == [1, 2]
    await store.add_feedback(feedback("conv_004", 5))
    await store.add_feedback(feedback("conv_007", -1))
    assert await ids(min_rating=1) == [4]
    assert await ids(max_rating=0) == [7]
    assert await ids(rated=True) == [4, 7]
    assert len(await ids(rated=False)) == 10


def feedback(conversation: str, rating: int, completion: str | None = None, minute: int = 0) -> Feedback:
    return Feedback(
        id=f"fb_{conversation}_{rating}_{minute}",
        conversation_id=conversation,
        rating=rating,
        comment="fine" if rating > 0 else None,
        completion_id=completion,
        created_at=T0 + timedelta(hours=1, minutes=minute),
    )


async def test_feedback(store: ConversationStore) -> None:
    first = record(1, (user("hi"),))
    await store.record([first])
    await store.add_feedback(feedback("conv_a", 1, first.id))
    await store.add_feedback(feedback("conv_a", -1, minute=1))
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert [(f.rating, f.comment, f.completion_id) for f in conversation.feedback] == [
        (1, "fine", first.id),
        (-1, None, None),
    ]
    assert conversation.summary.rating == -1  # the latest
    with pytest.raises(NotFound):
        await store.add_feedback(feedback("conv_missing", 1))
    with pytest.raises(NotFound):
        await store.add_feedback(feedback("conv_a", 1, "chatcmpl-missing"))


async def test_delete_removes_everything(store: ConversationStore) -> None:
    first = record(1, (user("hi"),))
    await store.record([first])
    await store.add_feedback(feedback("conv_a", 1))
    assert await store.delete("conv_a") is True
    assert await store.get("conv_a") is None
    assert await store.delete("conv_a") is False
    assert (await store.list()).items == ()
    assert await store.find_by_head(chain_hashes(first.transcript)[-1], "default") is None
    assert await store.find_completion(first.id) is None


async def test_export_streams_every_match_oldest_first(store: ConversationStore) -> None:
    records = await many(store, 23)
    exported = [c async for c in store.export()]
    assert [c.id for c in exported] == [f"conv_{n:03d}" for n in range(23)]
    assert exported[1].messages == records[1].transcript
    assert exported[0].messages == records[0].messages  # cancelled: no reply
    small = [c.id async for c in store.export(ConversationFilter(model="small", min_turns=1))]
    assert small == [f"conv_{n:03d}" for n in range(23) if n % 3 and n % 5]


async def test_retention_deletes_what_is_older(store: ConversationStore) -> None:
    await many(store, 6)
    assert await store.delete_before(T0 + timedelta(minutes=4)) == 4
    page = await store.list()
    assert sorted(item.id for item in page.items) == ["conv_004", "conv_005"]
    assert await store.delete_before(T0) == 0


async def test_texts_survive_unicode(store: ConversationStore) -> None:
    first = record(1, (user("naïve café — 日本語 🙂"),), assistant("ok ✓"))
    await store.record([first])
    conversation = await store.get("conv_a")
    assert conversation is not None
    assert conversation.messages == first.transcript
    assert conversation.summary.title == "naïve café — 日本語 🙂"


async def test_another_tenants_conversation_is_never_written_to(store: ConversationStore) -> None:
    first = record(1, (user("mine"),))
    stranger = replace(record(2, (user("overwrite it"),)), tenant="globex")
    again = replace(record(3, (*stranger.transcript, user("and more"))), tenant="globex")
    assert await store.record([first, stranger]) == 2
    assert await store.record([again]) == 1
    kept = await store.get("conv_a")
    assert kept is not None and kept.messages == first.transcript and kept.summary.tenant == "default"
    branch = await store.get(foreign_branch(stranger))
    assert branch is not None and branch.summary.tenant == "globex"
    assert branch.messages == again.transcript  # the tenant's own turns stay together
    assert [c.id for c in branch.completions] == [stranger.id, again.id]
    assert foreign_branch(stranger) != foreign_branch(replace(stranger, tenant="initech"))
    head = chain_hashes(again.transcript)[-1]
    assert await store.find_by_head(head, "globex") == foreign_branch(stranger)
    assert await store.find_by_head(head, "default") is None
    only = await store.list(ConversationFilter(tenant="globex"))
    assert [s.id for s in only.items] == [foreign_branch(stranger)]
    assert {s.tenant for s in (await store.list()).items} == {"default", "globex"}
    assert [c.id async for c in store.export(ConversationFilter(tenant="default"))] == ["conv_a"]
