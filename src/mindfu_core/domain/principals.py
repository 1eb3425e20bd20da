"""Who calls: a key's tenant and scopes, and the keys themselves (never their secret after creation)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mindfu_core.errors import InvalidRequest, PermissionDenied


class Scope(enum.StrEnum):
    """What a key may do; ``admin`` may do everything."""

    CHAT = "chat"  # generation, embeddings, models
    DOCUMENTS_READ = "documents:read"  # list, read and search documents
    DOCUMENTS_WRITE = "documents:write"  # upload and delete documents
    CONVERSATIONS_READ = "conversations:read"  # review, rate, export and delete logged conversations
    TRAINING = "training"  # training files, fine-tuning jobs
    ADMIN = "admin"  # keys, and every other scope
    METRICS = "metrics"  # the Prometheus endpoint


ALL_SCOPES = frozenset(Scope)
#: The tenant of the settings' keys, of a server without keys, and of data written before tenants existed
DEFAULT_TENANT = "default"
TENANT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
MAX_TENANT_CHARS = 64


def scopes_of(names: Iterable[str]) -> frozenset[Scope]:
    """``names`` as scopes; an unknown one is an ``InvalidRequest`` listing the known ones."""
    scopes = set()
    for name in names:
        try:
            scopes.add(Scope(name))
        except ValueError:
            known = ", ".join(scope.value for scope in Scope)
            raise InvalidRequest(f"unknown scope {name!r}: one of {known}", param="scopes") from None
    if not scopes:
        raise InvalidRequest("a key needs at least one scope", param="scopes")
    return frozenset(scopes)


def check_tenant(tenant: str) -> str:
    """``tenant`` if it is a valid tenant name (letters, digits, ``-_.``; at most 64 characters)."""
    if not tenant or len(tenant) > MAX_TENANT_CHARS or not set(tenant) <= TENANT_CHARS:
        raise InvalidRequest(
            f"a tenant is 1 to {MAX_TENANT_CHARS} letters, digits, '-', '_' or '.', got {tenant!r}",
            param="tenant",
        )
    return tenant


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The caller: the id of the key it presented (``None`` when the server takes no keys), its tenant and
    what it may do."""

    key_id: str | None
    tenant: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def require(self, scope: Scope) -> None:
        """Raise ``PermissionDenied`` naming ``scope`` unless this caller has it."""
        if not self.allows(scope):
            raise PermissionDenied(
                f"This API key lacks the '{scope}' scope this call needs.", code="insufficient_scope"
            )


#: The caller of a server that takes no keys: the default tenant, every scope
ANONYMOUS = Principal(key_id=None, tenant=DEFAULT_TENANT, scopes=ALL_SCOPES)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """A key as it is listed: its id, tenant, scopes and life, never the key itself."""

    id: str
    tenant: str
    scopes: frozenset[Scope]
    name: str | None = None
    prefix: str  # the key's first characters, to tell keys apart
    created_at: datetime
    created_by: str | None = None  # the id of the key that created it
    revoked_at: datetime | None = None

    @property
    def principal(self) -> Principal:
        return Principal(key_id=self.id, tenant=self.tenant, scopes=self.scopes)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewApiKey:
    """A key just created: the only time its secret is shown."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """Something a key did that an operator must be able to trace: keys created and revoked, deletes,
    exports."""

    id: str
    at: datetime
    actor: str | None  # the acting key's id (None: a server without keys, or the CLI on the server's files)
    tenant: str
    action: str  # "key.create", "key.revoke", "document.delete", "conversation.export"...
    target: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
