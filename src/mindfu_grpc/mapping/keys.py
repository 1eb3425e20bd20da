"""mindfu.v1 key messages <-> the domain's principals and keys."""

from __future__ import annotations

from mindfu_core.domain.principals import ApiKey, Principal, Scope
from mindfu_grpc._pb.mindfu.v1 import keys_pb2 as pb
from mindfu_grpc.mapping.common import from_timestamp, optional, timestamp


def principal_to_pb(principal: Principal) -> pb.Principal:
    message = pb.Principal(tenant=principal.tenant, scopes=sorted(principal.scopes))
    if principal.key_id is not None:
        message.key_id = principal.key_id
    return message


def principal_from_pb(message: pb.Principal) -> Principal:
    return Principal(
        key_id=optional(message, "key_id"),
        tenant=message.tenant,
        scopes=frozenset(Scope(name) for name in message.scopes),
    )


def key_to_pb(key: ApiKey) -> pb.ApiKey:
    message = pb.ApiKey(
        id=key.id,
        tenant=key.tenant,
        scopes=sorted(key.scopes),
        prefix=key.prefix,
        created_at=timestamp(key.created_at),
    )
    if key.name is not None:
        message.name = key.name
    if key.created_by is not None:
        message.created_by = key.created_by
    if key.revoked_at is not None:
        message.revoked_at.CopyFrom(timestamp(key.revoked_at))
    return message


def key_from_pb(message: pb.ApiKey) -> ApiKey:
    return ApiKey(
        id=message.id,
        tenant=message.tenant,
        scopes=frozenset(Scope(name) for name in message.scopes),
        name=optional(message, "name"),
        prefix=message.prefix,
        created_at=from_timestamp(message.created_at),
        created_by=optional(message, "created_by"),
        revoked_at=from_timestamp(message.revoked_at) if message.HasField("revoked_at") else None,
    )
