"""The KeyStore contract: in memory, SQLite and PostgreSQL (the real server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mindfu_adapters.store.keys import MemoryKeyStore, SqlKeyStore
from mindfu_adapters.store.sql import Database
from mindfu_core.domain.principals import ApiKey, AuditEvent, Scope
from mindfu_core.errors import Conflict
from mindfu_core.ports.key_store import KeyStore
from tests.postgres import fresh_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if request.param == "memory":
        yield MemoryKeyStore()
        return
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
        await database.migrate()
        yield SqlKeyStore(database)
        await database.aclose()
        return
    async with fresh_database() as url:
        database = Database(url)
        await database.migrate()
        yield SqlKeyStore(database)
        await database.aclose()


def key(number: int, *, tenant: str = "acme", scopes: frozenset[Scope] = frozenset({Scope.CHAT})) -> ApiKey:
    return ApiKey(
        id=f"key_{number:016x}",
        tenant=tenant,
        scopes=scopes,
        name=f"key {number}" if number % 2 else None,
        prefix=f"mf_{number:07d}",
        created_at=T0 + timedelta(minutes=number),
        created_by="key_admin" if number % 2 else None,
    )


async def test_a_key_is_found_by_its_digest_and_id_with_every_field(store: KeyStore) -> None:
    original = key(1, scopes=frozenset({Scope.CHAT, Scope.DOCUMENTS_READ, Scope.TRAINING}))
    await store.add(original, "d" * 64)
    assert await store.find("d" * 64) == original
    assert await store.get(original.id) == original
    assert await store.find("e" * 64) is None
    assert await store.get("key_missing") is None


async def test_an_id_or_digest_is_stored_once(store: KeyStore) -> None:
    await store.add(key(1), "a" * 64)
    with pytest.raises(Conflict):
        await store.add(key(1), "b" * 64)
    with pytest.raises(Conflict):
        await store.add(key(2), "a" * 64)


async def test_listing_is_oldest_first_and_by_tenant(store: KeyStore) -> None:
    for number, tenant in ((3, "acme"), (1, "acme"), (2, "globex")):
        await store.add(key(number, tenant=tenant), f"{number:064x}")
    assert [k.id for k in await store.list()] == [key(n).id for n in (1, 2, 3)]
    assert [k.id for k in await store.list(tenant="acme")] == [key(n).id for n in (1, 3)]
    assert await store.list(tenant="initech") == []


async def test_revoking_keeps_the_first_time_and_the_key(store: KeyStore) -> None:
    assert not await store.any_keys()
    await store.add(key(1), "a" * 64)
    assert await store.any_keys()
    revoked = await store.revoke(key(1).id, T0 + timedelta(days=1))
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(days=1)
    again = await store.revoke(key(1).id, T0 + timedelta(days=2))
    assert again is not None and again.revoked_at == T0 + timedelta(days=1)
    found = await store.find("a" * 64)
    assert found is not None and found.revoked_at == T0 + timedelta(days=1)
    assert await store.any_keys()  # a revoked key still closes the server
    assert await store.revoke("key_missing", T0) is None


async def test_the_audit_trail_is_newest_first_and_by_tenant(store: KeyStore) -> None:
    for number, tenant in enumerate(("acme", "globex", "acme")):
        await store.record(
            AuditEvent(
                id=f"audit_{number}",
                at=T0 + timedelta(seconds=number),
                actor="key_admin" if number else None,
                tenant=tenant,
                action="key.create",
                target=f"key_{number}",
                detail={"scopes": ["chat"], "n": number},
            )
        )
    assert [e.id for e in await store.events()] == ["audit_2", "audit_1", "audit_0"]
    acme = await store.events(tenant="acme", limit=1)
    assert [e.id for e in acme] == ["audit_2"]
    assert acme[0].detail == {"scopes": ["chat"], "n": 2} and acme[0].actor == "key_admin"
    assert acme[0].at == T0 + timedelta(seconds=2)
