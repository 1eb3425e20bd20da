"""SqlKeyStore and MemoryKeyStore: API keys and the audit trail, in SQL (SQLite or PostgreSQL) or a dict."""

from __future__ import annotations

import builtins
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mindfu_adapters.store.sql import Database
from mindfu_adapters.store.tables import api_keys, audit_events
from mindfu_core.domain.principals import ApiKey, AuditEvent, Scope
from mindfu_core.errors import Conflict


class SqlKeyStore:
    """A ``KeyStore`` over the shared ``Database``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, key: ApiKey, digest: str) -> None:
        async with self._db.transaction(f"recording key {key.id}") as connection:
            await connection.execute(api_keys.insert().values(digest=digest, **_row(key)))

    async def find(self, digest: str) -> ApiKey | None:
        return await self._one(api_keys.c.digest == digest, "looking up a key")

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._one(api_keys.c.id == key_id, f"reading key {key_id}")

    async def list(self, *, tenant: str | None = None) -> list[ApiKey]:
        query = api_keys.select().order_by(api_keys.c.created_at, api_keys.c.id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        async with self._db.connection("listing keys") as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        async with self._db.transaction(f"revoking key {key_id}") as connection:
            await connection.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = (
                (await connection.execute(api_keys.select().where(api_keys.c.id == key_id)))
                .mappings()
                .first()
            )
        return None if row is None else _key(row)

    async def any_keys(self) -> bool:
        query = sa.select(api_keys.c.id).limit(1)
        async with self._db.connection("looking for keys") as connection:
            return (await connection.execute(query)).first() is not None

    async def record(self, event: AuditEvent) -> None:
        async with self._db.transaction(f"auditing {event.action}") as connection:
            await connection.execute(
                audit_events.insert().values(
                    id=event.id,
                    at=event.at,
                    actor=event.actor,
                    tenant=event.tenant,
                    action=event.action,
                    target=event.target,
                    detail=dict(event.detail),
                )
            )

    async def events(self, *, tenant: str | None = None, limit: int = 100) -> builtins.list[AuditEvent]:
        query = audit_events.select().order_by(audit_events.c.seq.desc()).limit(limit)
        if tenant is not None:
            query = query.where(audit_events.c.tenant == tenant)
        async with self._db.connection("reading the audit trail") as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [
            AuditEvent(
                id=row["id"],
                at=row["at"],
                actor=row["actor"],
                tenant=row["tenant"],
                action=row["action"],
                target=row["target"],
                detail=dict(row["detail"] or {}),
            )
            for row in rows
        ]

    async def _one(self, where: Any, what: str) -> ApiKey | None:
        async with self._db.connection(what) as connection:
            row = (await connection.execute(api_keys.select().where(where))).mappings().first()
        return None if row is None else _key(row)


class MemoryKeyStore:
    """A ``KeyStore`` in this process (tests, and servers without a database)."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[ApiKey, str]] = {}
        self._events: list[AuditEvent] = []

    async def add(self, key: ApiKey, digest: str) -> None:
        if key.id in self._keys or any(known == digest for _, known in self._keys.values()):
            raise Conflict(f"recording key {key.id}: it exists")
        self._keys[key.id] = (key, digest)

    async def find(self, digest: str) -> ApiKey | None:
        return next((key for key, known in self._keys.values() if known == digest), None)

    async def get(self, key_id: str) -> ApiKey | None:
        found = self._keys.get(key_id)
        return None if found is None else found[0]

    async def list(self, *, tenant: str | None = None) -> list[ApiKey]:
        keys = [key for key, _ in self._keys.values() if tenant is None or key.tenant == tenant]
        return sorted(keys, key=lambda key: (key.created_at, key.id))

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        found = self._keys.get(key_id)
        if found is None:
            return None
        key, digest = found
        if key.revoked_at is None:
            key = replace(key, revoked_at=at)
            self._keys[key_id] = (key, digest)
        return key

    async def any_keys(self) -> bool:
        return bool(self._keys)

    async def record(self, event: AuditEvent) -> None:
        self._events.append(event)

    async def events(self, *, tenant: str | None = None, limit: int = 100) -> builtins.list[AuditEvent]:
        found = [event for event in reversed(self._events) if tenant is None or event.tenant == tenant]
        return found[:limit]


def _row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "tenant": key.tenant,
        "scopes": sorted(key.scopes),
        "name": key.name,
        "created_at": key.created_at,
        "created_by": key.created_by,
        "revoked_at": key.revoked_at,
    }


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant=row["tenant"],
        scopes=frozenset(Scope(name) for name in row["scopes"]),
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        revoked_at=row["revoked_at"],
    )
