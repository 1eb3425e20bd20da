"""``/v1/me`` (who calls) and ``/v1/admin/keys`` (create, list and revoke API keys; the admin scope)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from mindfu_core.domain.principals import ApiKey, Principal, Scope
from mindfu_http.auth import authorized
from mindfu_http.deps import application
from mindfu_http.responses import STRICT

router = APIRouter(prefix="/v1", tags=["admin"])


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(description="The tenant the key's calls act for (letters, digits, '-', '_', '.').")
    # checked by the key service, which names the scopes it knows, as every edge does
    scopes: list[str] = Field(
        description="What the key may do (at least one).",
        json_schema_extra={"items": {"type": "string", "enum": [scope.value for scope in Scope]}},
    )
    name: str | None = Field(default=None, max_length=255, description="A name to recognise it by.")


@with_config(STRICT)
class PrincipalObject(TypedDict):
    object: Literal["principal"]
    key_id: str | None
    tenant: str
    scopes: list[str]


@with_config(STRICT)
class KeyObject(TypedDict):
    id: str
    object: Literal["api_key"]
    tenant: str
    scopes: list[str]
    name: str | None
    prefix: str
    created_at: int
    created_by: str | None
    revoked_at: int | None


@with_config(STRICT)
class NewKeyObject(KeyObject):
    key: str  # the secret: shown this once


@with_config(STRICT)
class KeyList(TypedDict):
    object: Literal["list"]
    data: list[KeyObject]


def principal_object(principal: Principal) -> PrincipalObject:
    return {
        "object": "principal",
        "key_id": principal.key_id,
        "tenant": principal.tenant,
        "scopes": sorted(principal.scopes),
    }


def key_object(key: ApiKey) -> KeyObject:
    return {
        "id": key.id,
        "object": "api_key",
        "tenant": key.tenant,
        "scopes": sorted(key.scopes),
        "name": key.name,
        "prefix": key.prefix,
        "created_at": int(key.created_at.timestamp()),
        "created_by": key.created_by,
        "revoked_at": int(key.revoked_at.timestamp()) if key.revoked_at is not None else None,
    }


Caller = Annotated[Principal, authorized(None)]
Admin = Annotated[Principal, authorized(Scope.ADMIN)]


@router.get("/me", summary="The caller: the tenant and scopes of the presented key")
async def me(principal: Caller) -> PrincipalObject:
    return principal_object(principal)


@router.post("/admin/keys", status_code=201, summary="Create an API key (its secret is shown this once)")
async def create_key(body: KeyIn, request: Request, principal: Admin) -> NewKeyObject:
    made = await application(request).keys.create(
        principal, tenant=body.tenant, scopes=body.scopes, name=body.name
    )
    return {**key_object(made.key), "key": made.secret}


@router.get("/admin/keys", summary="List the API keys the caller manages, revoked ones included")
async def list_keys(request: Request, principal: Admin, tenant: str | None = None) -> KeyList:
    keys = await application(request).keys.list(principal, tenant=tenant)
    return {"object": "list", "data": [key_object(key) for key in keys]}


@router.delete("/admin/keys/{key_id}", summary="Revoke an API key at once")
async def revoke_key(key_id: str, request: Request, principal: Admin) -> KeyObject:
    return key_object(await application(request).keys.revoke(principal, key_id))
