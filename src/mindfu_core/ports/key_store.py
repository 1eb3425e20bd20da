"""The KeyStore port: API keys by the digest of their secret, and the audit trail of what keys did."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Protocol, runtime_checkable

from mindfu_core.domain.principals import ApiKey, AuditEvent


@runtime_checkable
class KeyStore(Protocol):
    """Keys are found by a keyed digest of their secret (the store never sees a secret)."""

    async def add(self, key: ApiKey, digest: str) -> None:
        """Record ``key``; ``Conflict`` if its id or digest is already recorded."""
        ...

    async def find(self, digest: str) -> ApiKey | None:
        """The key whose secret has ``digest``, revoked or not."""
        ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def list(self, *, tenant: str | None = None) -> list[ApiKey]:
        """Every key (of ``tenant``), revoked ones included, oldest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked at ``at`` (a key revoked before keeps its time); ``None`` if unknown."""
        ...

    async def any_keys(self) -> bool:
        """Whether any key was ever stored, revoked or not (a server with none takes calls without keys;
        revoking the last key must not open a server)."""
        ...

    async def record(self, event: AuditEvent) -> None:
        """Add ``event`` to the audit trail."""
        ...

    async def events(self, *, tenant: str | None = None, limit: int = 100) -> builtins.list[AuditEvent]:
        """The latest events (of ``tenant``), newest first."""
        ...
