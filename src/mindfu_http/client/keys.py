"""``KeyApi`` over ``/v1/me`` and ``/v1/admin/keys``: the server knows the caller from the credentials each
request presents, so ``caller`` is not sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mindfu_core.domain.principals import ApiKey, NewApiKey, Principal, Scope
from mindfu_http.client.transport import Transport


def _when(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def key_of(found: Mapping[str, Any]) -> ApiKey:
    created = _when(found["created_at"])
    assert created is not None
    return ApiKey(
        id=found["id"],
        tenant=found["tenant"],
        scopes=frozenset(Scope(name) for name in found["scopes"]),
        name=found.get("name"),
        prefix=found["prefix"],
        created_at=created,
        created_by=found.get("created_by"),
        revoked_at=_when(found.get("revoked_at")),
    )


class HttpKeys:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    async def whoami(self, credentials: str | None) -> Principal:
        found = await self._http.json("GET", "/v1/me", presenting=credentials)
        return Principal(
            key_id=found.get("key_id"),
            tenant=found["tenant"],
            scopes=frozenset(Scope(name) for name in found["scopes"]),
        )

    async def create(
        self, caller: Principal, *, tenant: str, scopes: Iterable[str], name: str | None = None
    ) -> NewApiKey:
        body: dict[str, Any] = {"tenant": tenant, "scopes": list(scopes)}
        if name is not None:
            body["name"] = name
        found = await self._http.json("POST", "/v1/admin/keys", json=body)
        return NewApiKey(key=key_of(found), secret=found["key"])

    async def list(self, caller: Principal, *, tenant: str | None = None) -> list[ApiKey]:
        params = {"tenant": tenant} if tenant is not None else None
        found = await self._http.json("GET", "/v1/admin/keys", params=params)
        return [key_of(item) for item in found["data"]]

    async def revoke(self, caller: Principal, key_id: str) -> ApiKey:
        return key_of(await self._http.json("DELETE", f"/v1/admin/keys/{quote(key_id, safe='')}"))
