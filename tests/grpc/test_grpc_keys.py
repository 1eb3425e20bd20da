"""mindfu.v1.KeyService, and the scope every method needs."""

from __future__ import annotations

import pytest

import grpc
from mindfu_grpc._pb.mindfu.v1 import documents_pb2, keys_pb2, keys_pb2_grpc, models_pb2
from mindfu_grpc.auth import METHOD_SCOPES
from mindfu_grpc.server import SERVICE_NAMES
from tests.grpc.conftest import CoreFactory

ROOT = (("authorization", "Bearer root-key"),)


def test_every_method_of_every_service_names_its_scope() -> None:
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    methods = {
        f"/{name}/{method.name}" for name in SERVICE_NAMES for method in pool.FindServiceByName(name).methods
    }
    assert methods == set(METHOD_SCOPES)


async def test_keys_are_made_listed_and_revoked_and_each_call_needs_its_scope(make_core: CoreFactory) -> None:
    async with make_core(api_keys="root-key") as core:
        stub = keys_pb2_grpc.KeyServiceStub(core.channel)
        made = await stub.CreateKey(
            keys_pb2.CreateKeyRequest(tenant="acme", scopes=["chat"], name="ci"), metadata=ROOT
        )
        assert (
            made.secret.startswith("mf_")
            and made.key.tenant == "acme"
            and not made.key.HasField("revoked_at")
        )
        mine = (("authorization", f"Bearer {made.secret}"),)
        who = await stub.WhoAmI(keys_pb2.WhoAmIRequest(), metadata=mine)
        assert (who.principal.key_id, who.principal.tenant, list(who.principal.scopes)) == (
            made.key.id,
            "acme",
            ["chat"],
        )
        assert (await core.models.ListModels(models_pb2.ListModelsRequest(), metadata=mine)).models
        assert await core.documents.GetDefaults(documents_pb2.GetDefaultsRequest(), metadata=mine)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await core.documents.ListDocuments(documents_pb2.ListDocumentsRequest(), metadata=mine)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "documents:read" in (denied.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.ListKeys(keys_pb2.ListKeysRequest(), metadata=mine)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        listed = await stub.ListKeys(keys_pb2.ListKeysRequest(tenant="acme"), metadata=ROOT)
        assert [key.id for key in listed.keys] == [made.key.id]
        revoked = await stub.RevokeKey(keys_pb2.RevokeKeyRequest(key_id=made.key.id), metadata=ROOT)
        assert revoked.key.HasField("revoked_at")
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await core.models.ListModels(models_pb2.ListModelsRequest(), metadata=mine)
        assert gone.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.RevokeKey(keys_pb2.RevokeKeyRequest(key_id="key_nope"), metadata=ROOT)
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.CreateKey(keys_pb2.CreateKeyRequest(tenant="acme", scopes=["root"]), metadata=ROOT)
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
