"""The RAG step in ChatService: grounding, the context block, sources, options, empty collections."""

from __future__ import annotations

import pytest

from mindfu_adapters.vector_store.memory import InMemoryVectorStore
from mindfu_core import ChatRequest, ChatService, InvalidRequest, Message, Role
from mindfu_core.domain.documents import Chunk, Filter
from mindfu_core.domain.retrieval import NO_OVERRIDES, RetrievalOptions, RetrievalOverrides
from mindfu_core.services.retrieval import CONTEXT_INSTRUCTIONS, Retriever
from tests.fakes import HashEmbedder, Reply, ScriptedEngine

FACTS = {
    "zorblax": "The Zorblax reactor on Kepler station runs at 451 kelvin.",
    "menu": "The station canteen serves noodles on Tuesdays.",
}


async def grounded_service(
    collection: str = "default", **defaults: object
) -> tuple[ChatService, ScriptedEngine, HashEmbedder]:
    embedder = HashEmbedder(dimension=4096)
    store = InMemoryVectorStore()
    texts = list(FACTS.values())
    vectors = await embedder.embed(texts)
    await store.upsert(
        collection,
        [
            Chunk(
                id=f"{name}:0", document_id=name, collection=collection, index=0, text=text,
                source=f"{name}.pdf", page=3, vector=tuple(vector),
            )
            for (name, text), vector in zip(FACTS.items(), vectors, strict=True)
        ],
    )  # fmt: skip
    engine = ScriptedEngine([Reply(text="It runs at 451 kelvin [1].")], context_length=4096)
    retriever = Retriever(embedder, store, defaults=RetrievalOptions(top_k=1, min_score=0.2, **defaults))  # type: ignore[arg-type]
    return ChatService([engine], retriever=retriever), engine, embedder


def ask(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(model="scripted", messages=(Message(role=Role.USER, content=text),), **kw)  # type: ignore[arg-type]


async def test_the_engine_sees_the_closest_chunk_in_a_delimited_block_before_the_question() -> None:
    chat, engine, _ = await grounded_service()
    result = await chat.complete(ask("How hot does the Zorblax reactor run?"))
    (turn,) = engine.requests[0].messages  # type: ignore[union-attr]
    assert turn.role is Role.USER
    content = turn.content or ""
    assert content.startswith(CONTEXT_INSTRUCTIONS)
    assert "<context>\n[1] zorblax.pdf, page 3\nThe Zorblax reactor" in content
    assert content.endswith("</context>\n\nHow hot does the Zorblax reactor run?")
    assert "noodles" not in content
    (source,) = result.sources
    assert (source.number, source.document_id, source.name, source.page, source.chunk_index) == (
        1, "zorblax", "zorblax.pdf", 3, 0,
    )  # fmt: skip
    assert 0.2 <= source.score <= 1.0
    assert source.excerpt.startswith("The Zorblax reactor")


async def test_the_context_leaves_the_system_prompt_and_the_history_as_they_were() -> None:
    """Everything before the newest user turn is what the client sent, so an engine's prompt cache can
    reuse it from one turn to the next; the context goes with the turn whose text was the query."""
    chat, engine, _ = await grounded_service()
    history = (
        Message(role=Role.SYSTEM, content="Be terse."),
        Message(role=Role.USER, content="Hello."),
        Message(role=Role.ASSISTANT, content="Hi."),
    )
    request = ChatRequest(
        model="scripted", messages=(*history, Message(role=Role.USER, content="the Zorblax reactor"))
    )
    await chat.complete(request)
    sent = engine.requests[0].messages  # type: ignore[union-attr]
    assert sent[:3] == history
    assert len(sent) == 4 and sent[3].role is Role.USER
    assert (sent[3].content or "").startswith(CONTEXT_INSTRUCTIONS)
    assert (sent[3].content or "").endswith("\n\nthe Zorblax reactor")


async def test_stream_ends_with_a_sources_delta() -> None:
    chat, _, _ = await grounded_service()
    deltas = [d async for d in await chat.stream(ask("Zorblax reactor temperature"))]
    assert deltas[-1].sources
    assert deltas[-1].sources[0].document_id == "zorblax"
    assert not any(d.sources for d in deltas[:-1])


async def test_options_disable_or_redirect_retrieval() -> None:
    chat, engine, embedder = await grounded_service()
    result = await chat.complete(ask("Zorblax?", retrieval=RetrievalOptions(enabled=False)))
    assert result.sources == ()
    assert "<context>" not in (engine.requests[0].messages[0].content or "")  # type: ignore[union-attr]
    calls = embedder.calls
    empty = await chat.complete(ask("Zorblax?", retrieval=RetrievalOptions(collection="nothing-here")))
    assert empty.sources == ()
    assert embedder.calls == calls  # an empty collection costs no embedding


async def test_unrelated_questions_get_no_context() -> None:
    chat, engine, _ = await grounded_service()
    result = await chat.complete(ask("xylophone quantum"))
    assert result.sources == ()
    assert "<context>" not in (engine.requests[0].messages[0].content or "")  # type: ignore[union-attr]


async def test_invalid_options_are_rejected() -> None:
    chat, _, _ = await grounded_service()
    with pytest.raises(InvalidRequest):
        await chat.complete(ask("Zorblax?", retrieval=RetrievalOptions(top_k=0)))
    with pytest.raises(InvalidRequest):
        await chat.complete(ask("Zorblax?", retrieval=RetrievalOptions(min_score=3.0)))


def test_overrides_change_only_what_a_request_gives() -> None:
    defaults = RetrievalOptions(top_k=4, min_score=0.25, collection="default")
    assert NO_OVERRIDES.apply(defaults) == defaults
    where = Filter(document_ids=("doc-1",))
    changed = RetrievalOverrides(top_k=9, min_score=None, where=where).apply(defaults)
    assert changed == RetrievalOptions(top_k=9, min_score=None, collection="default", where=where)
