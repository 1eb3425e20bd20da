"""Who calls, the same rules on every edge: API keys with a tenant and scopes.

Keys come from two places. The settings' plaintext keys (``MINDFU_API_KEYS``) are bootstrap admins of the
default tenant. Keys created through the API or ``mindfu keys create`` are stored as an HMAC-SHA256 digest
under the server's secret, so that a copy of the database gives nobody a key; their secret is shown once.
A server with neither takes calls without keys, as one caller of the default tenant with every scope; once a
key was stored, it never does again (revoking the last key does not open it).

An admin of the default tenant (the operator) manages the keys of every tenant; an admin of another tenant
manages its own tenant's keys only, and another tenant's key is not found for it.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from mindfu_core.domain.principals import (
    ALL_SCOPES,
    ANONYMOUS,
    DEFAULT_TENANT,
    ApiKey,
    AuditEvent,
    NewApiKey,
    Principal,
    Scope,
    check_tenant,
    scopes_of,
)
from mindfu_core.errors import NotFound, PermissionDenied, Unauthenticated
from mindfu_core.ports.key_store import KeyStore

#: what every created key starts with (secret scanners and people can tell it apart)
KEY_PREFIX = "mf_"
#: The credentials the current request presented (``Bearer <key>``), set by an edge for the duration of
#: one call so that a client of a remote core can present the same ones.
presented_credentials: ContextVar[str | None] = ContextVar("presented_credentials", default=None)


def bearer_token(authorization: str | None) -> str | None:
    """The key in ``Bearer <key>``; ``None`` when there is none."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class KeyService:
    """Authenticates callers and manages keys (``KeyApi``); lookups are cached for ``cache_s`` seconds, so a
    key revoked by another process stops working within that time (at once in this one)."""

    def __init__(
        self,
        store: KeyStore | None,
        *,
        secret: bytes,
        bootstrap: Iterable[str] = (),
        cache_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the server secret needs at least 16 bytes")
        self._store = store
        self._secret = secret
        self._bootstrap = {self.digest(key) for key in bootstrap if key}
        self._cache_s = cache_s
        self._clock = clock
        self._found: dict[str, tuple[float, ApiKey | None]] = {}
        self._active: tuple[float, bool] | None = None

    def digest(self, key: str) -> str:
        """The keyed digest a key is stored and looked up by."""
        return hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).hexdigest()

    async def enabled(self) -> bool:
        """Whether calls need a key: some are configured, or were ever stored (revoked ones included)."""
        if self._bootstrap:
            return True
        if self._store is None:
            return False
        now = self._clock()
        if self._active is None or self._active[0] <= now:
            self._active = (now + self._cache_s, await self._store.any_keys())
        return self._active[1]

    async def whoami(self, credentials: str | None) -> Principal:
        """The caller that presented ``credentials`` (``Bearer <key>``); ``Unauthenticated`` when the server
        takes keys and these are missing, unknown or revoked."""
        if not await self.enabled():
            return ANONYMOUS
        token = bearer_token(credentials)
        if token is None:
            raise Unauthenticated(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                "(or 'x-api-key: <key>').",
                code="missing_api_key",
            )
        digest = self.digest(token)
        matched = False
        for known in self._bootstrap:  # every configured key compared, whatever matches
            matched |= hmac.compare_digest(digest, known)
        if matched:
            return Principal(key_id=f"key_{digest[:16]}", tenant=DEFAULT_TENANT, scopes=ALL_SCOPES)
        key = await self._find(digest)
        if key is None:
            raise Unauthenticated("Incorrect API key provided.")
        if key.revoked_at is not None:
            raise Unauthenticated("This API key was revoked.", code="revoked_api_key")
        return key.principal

    async def create(
        self, caller: Principal, *, tenant: str, scopes: Iterable[str], name: str | None = None
    ) -> NewApiKey:
        """A new key of ``tenant`` with ``scopes``; its secret is in the answer and nowhere else."""
        store = self._manage(caller, check_tenant(tenant))
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=f"key_{secrets.token_hex(8)}",
            tenant=tenant,
            scopes=scopes_of(scopes),
            name=name or None,
            prefix=secret[:10],
            created_at=datetime.now(UTC),
            created_by=caller.key_id,
        )
        await store.add(key, self.digest(secret))
        self._active = None
        await self.audit(caller, "key.create", key.id, tenant=tenant, scopes=sorted(key.scopes))
        return NewApiKey(key=key, secret=secret)

    async def list(self, caller: Principal, *, tenant: str | None = None) -> list[ApiKey]:
        """The keys ``caller`` manages (of ``tenant``), revoked ones included."""
        if caller.tenant != DEFAULT_TENANT:  # its own tenant's, whatever it names
            tenant = caller.tenant
        store = self._manage(caller, tenant)
        return await store.list(tenant=tenant)

    async def revoke(self, caller: Principal, key_id: str) -> ApiKey:
        """Revoke a key at once (other processes within the cache time); revoking twice keeps the first
        time."""
        store = self._manage(caller, None)
        key = await store.get(key_id)
        if key is None or not self._may_manage(caller, key.tenant):
            raise NotFound(f"No API key found with id '{key_id}'", param="key_id")
        revoked = await store.revoke(key_id, datetime.now(UTC))
        assert revoked is not None
        self._found.clear()
        self._active = None
        await self.audit(caller, "key.revoke", key_id, tenant=key.tenant)
        return revoked

    async def events(self, caller: Principal, *, limit: int = 100) -> builtins.list[AuditEvent]:
        """The latest audit events ``caller`` may see: its tenant's, or every tenant's for the operator."""
        store = self._manage(caller, None)
        return await store.events(
            tenant=None if caller.tenant == DEFAULT_TENANT else caller.tenant, limit=limit
        )

    async def audit(
        self, caller: Principal, action: str, target: str | None, *, tenant: str | None = None, **detail: Any
    ) -> None:
        """Record that ``caller`` did ``action`` to ``target`` (nowhere when nothing stores keys)."""
        if self._store is None:
            return
        await self._store.record(
            AuditEvent(
                id=f"audit_{uuid.uuid4().hex}",
                at=datetime.now(UTC),
                actor=caller.key_id,
                tenant=tenant or caller.tenant,
                action=action,
                target=target,
                detail=_plain(detail),
            )
        )

    def _manage(self, caller: Principal, tenant: str | None) -> KeyStore:
        caller.require(Scope.ADMIN)
        if tenant is not None and not self._may_manage(caller, tenant):
            raise PermissionDenied(
                f"An admin key of tenant '{caller.tenant}' cannot manage the keys of another tenant.",
                code="other_tenant",
            )
        if self._store is None:
            raise PermissionDenied("This server stores no keys: it takes only the keys of its settings.")
        return self._store

    @staticmethod
    def _may_manage(caller: Principal, tenant: str) -> bool:
        return caller.tenant in (DEFAULT_TENANT, tenant)

    async def _find(self, digest: str) -> ApiKey | None:
        if self._store is None:
            return None
        now = self._clock()
        cached = self._found.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await self._store.find(digest)
        if len(self._found) > 10_000:  # a flood of wrong keys does not grow the cache without bound
            self._found.clear()
        self._found[digest] = (now + self._cache_s, key)
        return key


def _plain(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in detail.items() if value is not None}
