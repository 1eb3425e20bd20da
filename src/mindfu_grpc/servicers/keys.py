"""mindfu.v1.KeyService: who calls, and the API keys."""

from __future__ import annotations

from typing import Any

import grpc
from mindfu_core.application import Application
from mindfu_grpc._pb.mindfu.v1 import keys_pb2 as pb
from mindfu_grpc._pb.mindfu.v1 import keys_pb2_grpc
from mindfu_grpc.auth import caller
from mindfu_grpc.mapping.common import optional
from mindfu_grpc.mapping.keys import key_to_pb, principal_to_pb

Context = grpc.aio.ServicerContext[Any, Any]


class KeyServicer(keys_pb2_grpc.KeyServiceServicer):
    def __init__(self, application: Application) -> None:
        self._app = application

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: Context) -> pb.WhoAmIResponse:
        return pb.WhoAmIResponse(principal=principal_to_pb(caller()))

    async def CreateKey(self, request: pb.CreateKeyRequest, context: Context) -> pb.CreateKeyResponse:
        made = await self._app.keys.create(
            caller(), tenant=request.tenant, scopes=list(request.scopes), name=optional(request, "name")
        )
        return pb.CreateKeyResponse(key=key_to_pb(made.key), secret=made.secret)

    async def ListKeys(self, request: pb.ListKeysRequest, context: Context) -> pb.ListKeysResponse:
        keys = await self._app.keys.list(caller(), tenant=optional(request, "tenant"))
        return pb.ListKeysResponse(keys=[key_to_pb(key) for key in keys])

    async def RevokeKey(self, request: pb.RevokeKeyRequest, context: Context) -> pb.RevokeKeyResponse:
        return pb.RevokeKeyResponse(key=key_to_pb(await self._app.keys.revoke(caller(), request.key_id)))
