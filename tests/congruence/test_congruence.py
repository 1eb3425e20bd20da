"""The same scenarios against the three implementations of the application (in-process, gRPC, HTTP): chat,
streams, tools, errors, documents and retrieval, embeddings, conversations with paging. What each saw must
be equal (random ids numbered, times left out)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mindfu_core.application import Application
from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    GenerationRequest,
    Message,
    Role,
    SamplingParams,
    TextRequest,
    ToolCall,
    ToolCallAssembler,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
)
from mindfu_core.domain.conversations import CallContext, ConversationFilter
from mindfu_core.domain.documents import ChunkingPolicy
from mindfu_core.domain.retrieval import RetrievalOverrides
from mindfu_core.domain.training import DataSource, Hyperparameters, JobSpec, JobStatus
from mindfu_core.errors import EngineFailure, MindFuError, Overloaded
from tests.congruence.conftest import assert_congruent, observe, three
from tests.fakes import Reply, ScriptedEngine
from tests.fixtures.tiny_llama import write_tiny_llama

FACT = "The lighthouse keeper of Ardnamurchan feeds the cat at seven. " * 4


def ask(text: str, **changes: Any) -> ChatRequest:
    return ChatRequest(model="scripted", messages=(Message(role=Role.USER, content=text),), **changes)


async def outcome(call: Awaitable[Any]) -> Any:
    """The call's result, or the error it raised (its class, message, field and code)."""
    try:
        return await call
    except MindFuError as error:
        return {
            "error": type(error).__name__,
            "message": error.message,
            "param": error.param,
            "code": error.code,
        }


async def test_models_chat_and_text_completions(tmp_path: Path) -> None:
    async def scenario(app: Application) -> Any:
        return {
            "models": await app.chat.list_models(),
            "model": await app.chat.get_model("scripted"),
            "missing": await outcome(app.chat.get_model("nope")),
            "tokens": await app.chat.count_tokens(ask("How many tokens is this?")),
            "chat": await app.chat.complete(ask("Hello?", sampling=SamplingParams(max_tokens=8))),
            "text": await app.chat.complete(TextRequest(model="scripted", prompt="Once upon")),
            "health": (await app.health()).ready,
        }

    async with three(tmp_path) as apps:
        seen = assert_congruent(await observe(apps, scenario))
    assert seen["model"]["context_length"] == 256 and seen["model"]["engine"] == "scripted"
    assert seen["missing"]["error"] == "NotFound" and seen["health"] is True
    assert seen["chat"]["choices"][0]["message"]["content"] == "Hello from the scripted engine."
    assert seen["chat"]["usage"]["completion_tokens"] == 5 and seen["chat"]["conversation_id"] == "<id1>"


async def test_streams_and_tool_calls(tmp_path: Path) -> None:
    call = ToolCall(id="call_0123456789abcdef01234567", name="lookup", arguments='{"city": "Oban"}')
    replies = [Reply(text="Streaming is fun to watch."), Reply(tool_calls=(call,), pieces=True)]
    tool = ToolSpec(name="lookup", description="weather", parameters={"type": "object", "properties": {}})

    async def scenario(app: Application) -> Any:
        found: dict[str, Any] = {}
        for label, request in (
            ("text", ask("Stream, please")),
            ("tools", ask("Weather?", tools=(tool,), tool_choice=ToolChoice(mode=ToolChoiceMode.AUTO))),
        ):
            stream = await app.chat.stream(request, CallContext(user="alice"))
            calls = ToolCallAssembler()
            text, finish, usage = [], [], None
            async for delta in stream:
                text.append(delta.content)
                calls.add(delta)
                finish += [delta.finish_reason] if delta.finish_reason else []
                usage = delta.usage or usage
            found[label] = {
                "id": stream.id,
                "conversation": stream.conversation_id,
                "text": "".join(text),
                "calls": calls.calls(),
                "finish": finish,
                "usage": usage,
            }
        return found

    async with three(tmp_path, replies) as apps:
        seen = assert_congruent(await observe(apps, scenario))
    assert seen["text"]["text"] == "Streaming is fun to watch." and seen["text"]["finish"] == ["stop"]
    assert seen["tools"]["calls"][0]["name"] == "lookup" and seen["tools"]["finish"] == ["tool_calls"]


async def test_errors_come_back_as_the_same_domain_errors(tmp_path: Path) -> None:
    async def scenario(app: Application) -> Any:
        return {
            "too_long": await outcome(app.chat.complete(ask("word " * 400))),
            "unknown_model": await outcome(
                app.chat.complete(ChatRequest(model="nope", messages=ask("x").messages))
            ),
            "no_document": await outcome(app.documents.get("doc-nope")),
            "no_conversation": await outcome(app.conversations.get("conv_nope")),
            "bad_rating": await outcome(app.conversations.add_feedback("conv_nope", rating=9)),
            "no_job": await outcome(app.training.get_job("ftjob-nope")),
        }

    async with three(tmp_path) as apps:
        seen = assert_congruent(await observe(apps, scenario))
    assert seen["too_long"]["error"] == "ContextLengthExceeded"
    assert seen["unknown_model"]["error"] == "NotFound" and seen["no_document"]["error"] == "NotFound"


class FailsMidway(ScriptedEngine):
    async def stream(self, request: GenerationRequest) -> AsyncIterator[ChatDelta]:
        yield ChatDelta(content="partial ")
        raise EngineFailure("decode failed at step 3")


class Busy(ScriptedEngine):
    async def complete(self, request: GenerationRequest) -> ChatResult:
        raise Overloaded("all slots busy", retry_after=2)


async def test_engine_failures_reach_every_caller_alike(tmp_path: Path) -> None:
    """A stream that fails after its first text, and a full engine; a server-side failure's message stays
    on the server for remote callers (they get a request id), so only its class and code are compared."""

    async def failing(app: Application) -> Any:
        stream = await app.chat.stream(ask("Go on"))
        text = []
        try:
            async for delta in stream:
                text.append(delta.content)
        except MindFuError as error:
            return {"text": "".join(text), "error": type(error).__name__, "code": error.code}
        return {"text": "".join(text), "error": None}

    async with three(tmp_path / "midway", engine=FailsMidway) as apps:
        seen = assert_congruent(await observe(apps, failing))
    assert seen == {"text": "partial ", "error": "EngineFailure", "code": "engine_failure"}

    async def busy(app: Application) -> Any:
        try:
            await app.chat.complete(ask("Now"))
        except Overloaded as error:
            return {"error": "Overloaded", "message": error.message, "retry_after": error.retry_after}
        return None

    async with three(tmp_path / "busy", engine=Busy) as apps:
        seen = assert_congruent(await observe(apps, busy))
    assert seen == {"error": "Overloaded", "message": "all slots busy", "retry_after": 2.0}


async def test_documents_retrieval_and_embeddings(tmp_path: Path) -> None:
    async def scenario(app: Application) -> Any:
        first = await app.documents.ingest_text(FACT, name="cat.txt", metadata={"team": "a"})
        again = await app.documents.ingest_text(FACT, name="cat.txt")
        second = await app.documents.ingest(
            b"# Notes\n\nThe ferry to Mull leaves at nine.\n", filename="notes.md", collection="default"
        )
        small = await app.documents.ingest_text(
            "Tides turn twice a day. " * 10, name="tides.txt", policy=ChunkingPolicy(size=64, overlap=8)
        )
        whole = await app.documents.ingest_text("One piece only.", name="one.txt", chunk=False)
        page = await app.documents.list(limit=2)
        rest = await app.documents.list(limit=2, cursor=page.next_cursor)
        options = app.retrieval.options(RetrievalOverrides(top_k=2, min_score=None))
        hits = await app.retrieval.search("When does the keeper feed the cat?", options)
        deleted = await app.documents.delete(second.document.id)
        return {
            "ingested": [first, again, second, small, whole],
            "pages": [page, rest],
            "defaults": [app.retrieval.defaults, app.documents.policy],
            "hits": hits,
            "deleted": deleted,
            "gone": await outcome(app.documents.get(second.document.id)),
            "embedded": await app.embeddings.embed("hash-bow", ["one", "two"]),
        }

    async with three(tmp_path) as apps:
        seen = assert_congruent(await observe(apps, scenario))
    assert [r["duplicate"] for r in seen["ingested"]] == [False, True, False, False, False]
    assert seen["pages"][0]["next_cursor"] is not None and seen["pages"][1]["next_cursor"] is None
    assert [len(p["items"]) for p in seen["pages"]] == [2, 2]
    assert seen["hits"] and seen["gone"]["error"] == "NotFound"


async def test_conversations_with_paging_feedback_and_export(tmp_path: Path) -> None:
    replies = [Reply(text=f"Answer number {i}.") for i in range(4)]

    async def scenario(app: Application) -> Any:
        results = [await app.chat.complete(ask(f"Question {i}?")) for i in range(3)]
        follow = ask("And then?")
        follow = ChatRequest(
            model="scripted",
            messages=(*ask("Question 0?").messages, results[0].choices[0].message, *follow.messages),
        )
        await app.chat.complete(follow, CallContext(conversation_id=results[0].conversation_id))
        first = await app.conversations.list(limit=2)
        second = await app.conversations.list(limit=2, cursor=first.next_cursor)
        target = results[1].conversation_id
        assert target is not None
        note = await app.conversations.add_feedback(
            target, rating=1, comment="good", completion_id=results[1].id
        )
        rated = await app.conversations.list(ConversationFilter(rated=True))
        held = await app.conversations.of_completion(results[2].id)
        exported = [c async for c in app.conversations.export()]
        examples = [e async for e in app.conversations.export_examples(ConversationFilter(min_turns=2))]
        await app.conversations.delete(target)
        return {
            "pages": [first, second],
            "feedback": note,
            "rated": rated,
            "held": held,
            "exported": exported,
            "examples": examples,
            "after_delete": await outcome(app.conversations.get(target)),
        }

    async with three(tmp_path, replies) as apps:
        seen = assert_congruent(await observe(apps, scenario))
    assert len(seen["pages"][0]["items"]) == 2 and len(seen["pages"][1]["items"]) == 1
    assert len(seen["exported"]) == 3 and len(seen["examples"]) == 1
    assert seen["rated"]["items"][0]["rating"] == 1 and seen["after_delete"]["error"] == "NotFound"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.mark.slow
async def test_a_fine_tuning_job_on_the_tiny_model(tmp_path: Path, tiny: Path) -> None:
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"Say {i}"},
                {"role": "assistant", "content": f"{i} it is."},
            ]
        }
        for i in range(8)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()

    async def scenario(app: Application) -> Any:
        uploaded = await app.training.upload_file(data, filename="train.jsonl")
        refused = await outcome(app.training.upload_file(b"not json", filename="bad.jsonl"))
        spec = JobSpec(
            base_model="scripted",
            source=DataSource.FILE,
            training_file=uploaded.id,
            suffix="same",
            hyperparameters=Hyperparameters(max_steps=2, load_in_4bit=False, logging_steps=1, save_steps=1),
        )
        created = await app.training.create_job(spec)
        job = created
        deadline = time.monotonic() + 240
        while job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.2)
            job = await app.training.get_job(job.id)
        first = await app.training.events(job.id, limit=3)
        rest = await app.training.events(job.id, limit=100, cursor=first.next_cursor)
        return {
            "uploaded": uploaded,
            "refused": refused,
            "files": await app.training.list_files(),
            "created": created,
            "finished": job,
            "events": [
                len(first.items),
                first.next_cursor is not None,
                len(first.items) + len(rest.items) > 3,
            ],
            "messages": sorted({e.message for e in (*first.items, *rest.items)}),
            "checkpoints": [c.step for c in await app.training.checkpoints(job.id)],
            "jobs": await app.training.list_jobs(),
            "cancel_done": await outcome(app.training.cancel_job(job.id)),
            "deleted": await app.training.delete_file(uploaded.id),
        }

    settings = {"training": {"base_models": {"scripted": str(tiny)}, "export_gguf": None}}
    async with three(tmp_path, **settings) as apps:
        seen = assert_congruent(await observe(apps, scenario))
    assert seen["finished"]["status"] == "succeeded", seen["finished"]["error"]
    assert seen["finished"]["progress"]["step"] == 2 and seen["checkpoints"]
    assert seen["refused"]["error"] == "InvalidRequest" and seen["cancel_done"]["error"] == "InvalidRequest"


async def test_keys_who_calls_and_what_they_may_do(tmp_path: Path) -> None:
    async def scenario(app: Application) -> Any:
        root = await app.keys.whoami("Bearer root-key")
        made = await app.keys.create(root, tenant="acme", scopes=["chat", "training"], name="ci")
        caller = await app.keys.whoami(f"Bearer {made.secret}")
        listed = await app.keys.list(root)
        revoked = await app.keys.revoke(root, made.key.id)
        return {
            "root": root,
            "made": replace(made.key, prefix=made.key.prefix[:3]),  # the rest of the prefix is random
            "secret": made.secret[:3] + str(len(made.secret)),
            "prefix_is_the_secrets": made.secret.startswith(made.key.prefix),
            "caller": caller,
            "listed": [replace(key, prefix=key.prefix[:3]) for key in listed],
            "revoked": revoked.revoked_at is not None,
            "revoked_key": await outcome(app.keys.whoami(f"Bearer {made.secret}")),
            "no_key": await outcome(app.keys.whoami(None)),
            "wrong_key": await outcome(app.keys.whoami("Bearer wrong")),
            "bad_scope": await outcome(app.keys.create(root, tenant="acme", scopes=["root"])),
            "bad_tenant": await outcome(app.keys.create(root, tenant="a b", scopes=["chat"])),
            "no_such_key": await outcome(app.keys.revoke(root, "key_0000000000000000")),
        }

    async with three(tmp_path, api_keys="root-key", auth={"secret": "a-secret-of-sixteen-or-more"}) as apps:
        seen = assert_congruent(await observe(apps, scenario))
    assert seen["caller"]["tenant"] == "acme" and set(seen["caller"]["scopes"]) == {"chat", "training"}
    assert seen["prefix_is_the_secrets"] and seen["listed"] == [seen["made"]]
    assert seen["revoked_key"]["code"] == "revoked_api_key" and seen["no_key"]["code"] == "missing_api_key"
    assert seen["bad_scope"]["error"] == "InvalidRequest" and seen["no_such_key"]["error"] == "NotFound"
