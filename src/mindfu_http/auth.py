"""Who calls: each route names the scope it needs; the caller comes from the key the request presents
(``Authorization: Bearer <key>``, or Anthropic's ``x-api-key``), as the application's ``KeyApi`` knows it."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from mindfu_core.domain.principals import Principal, Scope
from mindfu_core.services.auth import presented_credentials
from mindfu_http.deps import application

__all__ = ["authorized", "caller", "credentials", "tenant_of"]


def credentials(request: Request) -> str | None:
    """The presented key as ``Bearer <key>``: the Authorization header, or ``x-api-key`` (Anthropic's)."""
    authorization = request.headers.get("authorization")
    if not authorization and (key := request.headers.get("x-api-key")):
        return f"Bearer {key}"
    return authorization


async def caller(request: Request) -> Principal:
    """The request's caller, authenticated once per request (``Unauthenticated`` without a valid key when
    the server takes keys)."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is None:
        authorization = credentials(request)
        found = await application(request).keys.whoami(authorization)
        request.state.principal = found
        presented_credentials.set(authorization)  # a gateway presents the same key to its core
    return found


async def tenant_of(request: Request) -> str:
    """The caller's tenant: what its reads and writes are kept to."""
    return (await caller(request)).tenant


def authorized(scope: Scope | None) -> Any:
    """A dependency: the caller, who must hold ``scope`` (``None``: any caller with a valid key)."""

    async def check(request: Request) -> Principal:
        principal = await caller(request)
        if scope is not None:
            principal.require(scope)
        return principal

    return Depends(check)
