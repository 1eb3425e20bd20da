"""The remote core's callers and keys (``KeyApi`` over ``mindfu.v1.KeyService``): the core knows the caller
from the credentials each call presents, so ``caller`` is not sent."""

from __future__ import annotations

from collections.abc import Iterable

from mindfu_core.domain.principals import ApiKey, NewApiKey, Principal
from mindfu_grpc._pb.mindfu.v1 import keys_pb2
from mindfu_grpc._pb.mindfu.v1.keys_pb2_grpc import KeyServiceStub
from mindfu_grpc.channel import Channel, Metadata
from mindfu_grpc.mapping.keys import key_from_pb, principal_from_pb


class RemoteKeys:
    """``anonymous_as_own_key``: a caller presenting no key is the client's own key (a gateway whose edge
    takes no keys of its own); otherwise it is whoever the core takes a call without a key for."""

    def __init__(self, channel: Channel, *, anonymous_as_own_key: bool = False) -> None:
        self._channel = channel
        self._stub = KeyServiceStub(channel.channel)
        self._anonymous_as_own_key = anonymous_as_own_key

    async def whoami(self, credentials: str | None) -> Principal:
        if credentials is not None:
            metadata: Metadata | None = (("authorization", credentials),)
        else:
            metadata = None if self._anonymous_as_own_key else ()
        found = await self._channel.call(self._stub.WhoAmI, keys_pb2.WhoAmIRequest(), metadata=metadata)
        return principal_from_pb(found.principal)

    async def create(
        self, caller: Principal, *, tenant: str, scopes: Iterable[str], name: str | None = None
    ) -> NewApiKey:
        request = keys_pb2.CreateKeyRequest(tenant=tenant, scopes=list(scopes))
        if name is not None:
            request.name = name
        found = await self._channel.call(self._stub.CreateKey, request)
        return NewApiKey(key=key_from_pb(found.key), secret=found.secret)

    async def list(self, caller: Principal, *, tenant: str | None = None) -> list[ApiKey]:
        request = keys_pb2.ListKeysRequest()
        if tenant is not None:
            request.tenant = tenant
        found = await self._channel.call(self._stub.ListKeys, request)
        return [key_from_pb(key) for key in found.keys]

    async def revoke(self, caller: Principal, key_id: str) -> ApiKey:
        found = await self._channel.call(self._stub.RevokeKey, keys_pb2.RevokeKeyRequest(key_id=key_id))
        return key_from_pb(found.key)
