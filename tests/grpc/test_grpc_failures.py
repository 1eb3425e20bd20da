"""Statuses for every domain error (and back to the same error on the client), overload, internal errors,
deadlines and cancellation stopping generation in the engine."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import grpc
from mindfu_core.domain.principals import ANONYMOUS, Principal
from mindfu_core.errors import ALL_ERRORS, MindFuError, Overloaded, UpstreamUnavailable
from mindfu_grpc._pb.mindfu.v1 import chat_pb2, models_pb2
from mindfu_grpc.client import RemoteCore
from mindfu_grpc.errors import GRPC_CODES, error_from_rpc
from mindfu_grpc.server import GrpcOptions, GrpcServer
from mindfu_http.errors import HTTP_ERRORS
from tests.fakes import Reply, ScriptedEngine
from tests.grpc.conftest import CoreFactory
from tests.grpc.test_grpc_edge import USER, details_of

#: The status each domain error must get (the table in STYLE.md, PayloadTooLarge as gRPC's own size status).
EXPECTED = {
    "MindFuError": grpc.StatusCode.INTERNAL,
    "InvalidRequest": grpc.StatusCode.INVALID_ARGUMENT,
    "ContextLengthExceeded": grpc.StatusCode.INVALID_ARGUMENT,
    "PayloadTooLarge": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "UnsupportedMediaType": grpc.StatusCode.INVALID_ARGUMENT,
    "UnprocessableContent": grpc.StatusCode.INVALID_ARGUMENT,
    "Unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "PermissionDenied": grpc.StatusCode.PERMISSION_DENIED,
    "NotFound": grpc.StatusCode.NOT_FOUND,
    "Conflict": grpc.StatusCode.ALREADY_EXISTS,
    "Overloaded": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "UpstreamUnavailable": grpc.StatusCode.UNAVAILABLE,
    "EngineFailure": grpc.StatusCode.INTERNAL,
    "ConfigurationError": grpc.StatusCode.INTERNAL,
}


def test_every_domain_error_is_in_both_edge_tables() -> None:
    assert set(GRPC_CODES) == set(ALL_ERRORS) == set(HTTP_ERRORS)
    assert {cls.__name__: code for cls, code in GRPC_CODES.items()} == EXPECTED


class Failing:
    """An application whose model listing raises the error it was given."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.chat = self
        self.documents = self.retrieval = self.embeddings = self.conversations = self.keys = self

    async def whoami(self, credentials: str | None) -> Principal:
        return ANONYMOUS

    async def list_models(self, **kwargs: Any) -> Any:
        raise self.error

    async def health(self) -> Any:
        raise AssertionError


def _make(cls: type[MindFuError]) -> MindFuError:
    if cls is Overloaded:
        return Overloaded("busy", retry_after=2.5)
    if cls is UpstreamUnavailable:
        return UpstreamUnavailable("database down", retry_after=3.0)
    return cls("secret internals" if GRPC_CODES[cls] is grpc.StatusCode.INTERNAL else "told", param="field")


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
async def test_each_error_gets_its_status_details_and_comes_back_as_itself(cls: type[MindFuError]) -> None:
    error = _make(cls)
    server = GrpcServer(Failing(error), GrpcOptions(port=0))  # type: ignore[arg-type]
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            from mindfu_grpc._pb.mindfu.v1.models_pb2_grpc import ModelServiceStub

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await ModelServiceStub(channel).ListModels(models_pb2.ListModelsRequest())
    finally:
        await server.stop(0)
    failure = caught.value
    assert failure.code() is EXPECTED[cls.__name__]
    found = details_of(failure)
    assert found["ErrorInfo"].reason == error.code and found["ErrorInfo"].metadata["error"] == cls.__name__
    if failure.code() is grpc.StatusCode.INTERNAL:
        assert "secret" not in (failure.details() or "")
        assert found["request_id"] in (failure.details() or "")
    back = error_from_rpc(failure, target="test")
    assert type(back) is cls and back.code == error.code
    if cls in (Overloaded, UpstreamUnavailable):
        assert found["RetryInfo"].retry_delay.ToMilliseconds() == int(error.retry_after * 1000)  # type: ignore[attr-defined]
        assert back.retry_after == error.retry_after  # type: ignore[attr-defined]
    elif failure.code() is not grpc.StatusCode.INTERNAL:
        assert back.param == "field"


async def test_an_unexpected_exception_is_internal_without_its_details() -> None:
    server = GrpcServer(Failing(RuntimeError("password=hunter2")), GrpcOptions(port=0))  # type: ignore[arg-type]
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            from mindfu_grpc._pb.mindfu.v1.models_pb2_grpc import ModelServiceStub

            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await ModelServiceStub(channel).ListModels(models_pb2.ListModelsRequest())
    finally:
        await server.stop(0)
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert "hunter2" not in (caught.value.details() or "") and "request id req_" in (
        caught.value.details() or ""
    )


async def test_overload_is_resource_exhausted_with_retry_info(make_core: CoreFactory) -> None:
    engine = ScriptedEngine([Reply(text="w " * 200)], token_delay=0.01, slots=1, max_queue=0)
    async with make_core(engine) as core:
        busy = core.chat.StreamComplete(chat_pb2.StreamCompleteRequest(model="scripted", messages=USER))
        await busy.read()  # the one slot is taken
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await core.chat.Complete(chat_pb2.CompleteRequest(model="scripted", messages=USER))
        busy.cancel()
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_of(caught.value)["RetryInfo"].retry_delay.ToMilliseconds() >= 1


async def _settled(engine: ScriptedEngine) -> int:
    """The engine's token count once it stops growing (and the slot is free)."""
    last = -1
    for _ in range(100):
        await asyncio.sleep(0.05)
        if engine.tokens_generated == last and engine.stats().active == 0:
            return last
        last = engine.tokens_generated
    raise AssertionError("generation did not stop")


@pytest.mark.parametrize("kind", ["stream", "unary"])
async def test_a_deadline_stops_generation(make_core: CoreFactory, kind: str) -> None:
    engine = ScriptedEngine([Reply(text="w " * 400)], token_delay=0.01)
    async with make_core(engine) as core:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            if kind == "stream":
                request = chat_pb2.StreamCompleteRequest(model="scripted", messages=USER)
                async for _ in core.chat.StreamComplete(request, timeout=0.3):
                    pass
            else:
                await core.chat.Complete(
                    chat_pb2.CompleteRequest(model="scripted", messages=USER), timeout=0.3
                )
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        stopped = await _settled(engine)
        assert 0 < stopped < 200  # of 400 words at 10 ms each
        assert (await core.models.ListModels(models_pb2.ListModelsRequest())).models


async def test_a_client_cancel_stops_generation(make_core: CoreFactory) -> None:
    engine = ScriptedEngine([Reply(text="w " * 400)], token_delay=0.01)
    async with make_core(engine) as core:
        call = core.chat.StreamComplete(chat_pb2.StreamCompleteRequest(model="scripted", messages=USER))
        for _ in range(4):  # the accepted (empty) delta, then three words
            await call.read()
        call.cancel()
        stopped = await _settled(engine)
        assert 3 <= stopped < 100
        assert core.services.completion_log is not None and await core.services.completion_log.flush(10.0)
        page = await core.services.conversations.list()
        assert [s.last_status.value for s in page.items] == ["cancelled"]


async def test_a_gateway_client_gets_unavailable_while_its_core_is_away(make_core: CoreFactory) -> None:
    async with make_core() as core:
        remote = RemoteCore(f"127.0.0.1:{core.port}", connect_timeout=5.0, timeout=2.0)
        application = await remote.start()
        assert [m.id for m in await application.chat.list_models()] == ["scripted"]
        assert (await application.health()).ready
    # the core is gone: calls fail as UpstreamUnavailable (503 + Retry-After at the HTTP edge)
    with pytest.raises(UpstreamUnavailable) as caught:
        await application.chat.list_models()
    assert caught.value.retry_after is not None
    assert not (await application.health()).ready
    await remote.stop()


async def test_a_gateway_recovers_when_its_core_returns(make_core: CoreFactory) -> None:
    async with make_core() as first:
        port = first.port
        remote = RemoteCore(f"127.0.0.1:{port}", connect_timeout=5.0, timeout=2.0)
        application = await remote.start()
    with pytest.raises(UpstreamUnavailable):
        await application.chat.list_models()
    async with make_core(ScriptedEngine(model_id="second"), port=port):
        for _ in range(100):
            try:
                models = await application.chat.list_models()
                break
            except UpstreamUnavailable:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the gateway did not reconnect within 10 s")
        assert [m.id for m in models] == ["second"]
    await remote.stop()


async def test_a_gateway_does_not_start_without_its_core() -> None:
    remote = RemoteCore("127.0.0.1:1", connect_timeout=0.5)
    with pytest.raises(UpstreamUnavailable, match="MINDFU_CORE__ADDRESS"):
        await remote.start()
    await remote.stop()
