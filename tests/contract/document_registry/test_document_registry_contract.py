"""The DocumentRegistry contract: in memory, SQLite and PostgreSQL (the real server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mindfu_adapters.registry.memory import InMemoryDocumentRegistry
from mindfu_adapters.store.documents import SqlDocumentRegistry
from mindfu_adapters.store.sql import Database
from mindfu_core.domain.documents import Document, stored_collection
from mindfu_core.errors import Conflict
from mindfu_core.ports.document_registry import DocumentRegistry
from tests.postgres import fresh_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentRegistry]:
    if request.param == "memory":
        yield InMemoryDocumentRegistry()
        return
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'registry.db'}")
        await database.migrate()
        yield SqlDocumentRegistry(database)
        await database.aclose()
        return
    async with fresh_database() as url:
        database = Database(url)
        await database.migrate()
        yield SqlDocumentRegistry(database)
        await database.aclose()


def document(number: int, *, collection: str = "c", sha: str | None = None) -> Document:
    return Document(
        id=f"00000000-0000-0000-0000-{number:012d}",
        collection=collection,
        name=f"doc{number}.pdf",
        sha256=sha or f"{number:064x}",
        media_type="application/pdf",
        size_bytes=1000 + number,
        chunk_count=number,
        embedding_model="all-MiniLM-L6-v2",
        created_at=T0 + timedelta(minutes=number),
        title=f"Title {number}" if number % 2 else None,
        metadata={"team": "ops", "n": number, "nested": {"ok": True}},
    )


async def test_round_trip_keeps_every_field(registry: DocumentRegistry) -> None:
    original = document(3)
    await registry.add(original)
    assert await registry.get(original.id) == original
    assert await registry.get("missing") is None


async def test_find_by_hash_is_per_collection(registry: DocumentRegistry) -> None:
    await registry.add(document(1, collection="a", sha="f" * 64))
    found = await registry.find_by_hash("a", "f" * 64)
    assert found is not None and found.id == document(1).id
    assert await registry.find_by_hash("b", "f" * 64) is None
    await registry.add(document(2, collection="b", sha="f" * 64))
    second = await registry.find_by_hash("b", "f" * 64)
    assert second is not None and second.id == document(2).id


async def test_same_content_twice_in_a_collection_is_a_conflict(registry: DocumentRegistry) -> None:
    await registry.add(document(1, sha="e" * 64))
    with pytest.raises(Conflict):
        await registry.add(document(2, sha="e" * 64))
    with pytest.raises(Conflict):
        await registry.add(document(1, sha="d" * 64))
    assert [d.id for d in await registry.list()] == [document(1).id]


async def test_list_is_newest_first_paginated_and_filtered(registry: DocumentRegistry) -> None:
    for number in (1, 4, 2, 3):
        await registry.add(document(number, collection="x" if number != 4 else "y"))
    assert [d.chunk_count for d in await registry.list()] == [4, 3, 2, 1]
    assert [d.chunk_count for d in await registry.list(limit=2, offset=1)] == [3, 2]
    assert [d.chunk_count for d in await registry.list(collection="x")] == [3, 2, 1]
    assert await registry.list(collection="none") == []


async def test_delete(registry: DocumentRegistry) -> None:
    await registry.add(document(1))
    assert await registry.delete(document(1).id) is True
    assert await registry.delete(document(1).id) is False
    assert await registry.get(document(1).id) is None
    await registry.add(document(1))  # the same content may come back after a delete


async def test_list_keeps_to_a_tenants_collections(registry: DocumentRegistry) -> None:
    own = document(1, collection="docs")
    acme = replace(document(2, collection=stored_collection("acme", "docs")), sha256="a" * 64)
    acme_other = replace(document(3, collection=stored_collection("acme", "x_y%")), sha256="b" * 64)
    acmeish = replace(document(4, collection=stored_collection("acme_", "docs")), sha256="c" * 64)
    for each in (own, acme, acme_other, acmeish):
        await registry.add(each)
    assert [d.id for d in await registry.list(tenant="default")] == [own.id]
    assert [d.id for d in await registry.list(tenant="acme")] == [acme_other.id, acme.id]
    assert [d.id for d in await registry.list(tenant="acme_")] == [acmeish.id]  # "_" is not a wildcard
    assert [d.id for d in await registry.list(tenant="globex")] == []
    assert len(await registry.list()) == 4
    assert await registry.find_by_hash(stored_collection("acme", "docs"), "a" * 64) == acme
    assert await registry.find_by_hash("docs", "a" * 64) is None
