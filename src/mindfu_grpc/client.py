"""The application over gRPC: a client of a remote core that implements ``mindfu_core.application``, so
the HTTP facade runs as a stateless gateway (``mindfu serve --role gateway --core HOST:PORT``).

Each call presents the credentials of the request being served (or the gateway's own key), carries a
deadline, and turns the core's status back into the domain error it stands for; a core that is down is
``UpstreamUnavailable`` (503 with Retry-After at the gateway) until the channel reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from google.protobuf import json_format

import grpc
from mindfu_core.application import Health
from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    ChatStream,
    GenerationRequest,
    ModelInfo,
)
from mindfu_core.domain.conversations import (
    NO_CONTEXT,
    CallContext,
)
from mindfu_core.domain.text import check_request_text, check_text
from mindfu_core.errors import ConfigurationError, UpstreamUnavailable
from mindfu_grpc._pb.mindfu.v1 import (
    chat_pb2,
    documents_pb2,
    models_pb2,
)
from mindfu_grpc._pb.mindfu.v1.chat_pb2_grpc import ChatServiceStub
from mindfu_grpc._pb.mindfu.v1.documents_pb2_grpc import DocumentServiceStub
from mindfu_grpc._pb.mindfu.v1.models_pb2_grpc import ModelServiceStub
from mindfu_grpc.channel import Channel, stream_pieces
from mindfu_grpc.mapping import chat as chat_mapping
from mindfu_grpc.mapping import documents as document_mapping
from mindfu_grpc.mapping import results as results_mapping
from mindfu_grpc.remote import (
    Defaults,
    RemoteConversations,
    RemoteDocuments,
    RemoteEmbeddings,
    RemoteRetrieval,
    RemoteTraining,
)
from mindfu_grpc.remote_keys import RemoteKeys

log = logging.getLogger(__name__)


class RemoteChat:
    """``ChatApi`` over ``mindfu.v1.ChatService`` and ``ModelService``."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._chat = ChatServiceStub(channel.channel)
        self._models = ModelServiceStub(channel.channel)

    async def list_models(self, *, tenant: str | None = None) -> list[ModelInfo]:
        found = await self._channel.call(self._models.ListModels, models_pb2.ListModelsRequest())
        return [results_mapping.model_from_pb(m) for m in found.models]

    async def get_model(self, model_id: str, *, tenant: str | None = None) -> ModelInfo:
        found = await self._channel.call(self._models.GetModel, models_pb2.GetModelRequest(id=model_id))
        return results_mapping.model_from_pb(found.model)

    async def count_tokens(self, request: ChatRequest) -> int:
        check_request_text(request)
        message = _chat_message(chat_pb2.CountTokensRequest, request, NO_CONTEXT)
        counted = await self._channel.call(self._chat.CountTokens, message)
        return int(counted.input_tokens)

    async def complete(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatResult:
        _check_text(request, context)
        if isinstance(request, ChatRequest):
            response = await self._channel.call(
                self._chat.Complete, _chat_message(chat_pb2.CompleteRequest, request, context)
            )
            return results_mapping.result_from_pb(response)
        text = chat_pb2.CompleteTextRequest(
            model=request.model, prompt=request.prompt, options=chat_mapping.text_options_to_pb(request)
        )
        return results_mapping.text_result_from_pb(await self._channel.call(self._chat.CompleteText, text))

    async def stream(self, request: GenerationRequest, context: CallContext = NO_CONTEXT) -> ChatStream:
        """Starts the call and reads its first message (errors before generation surface here)."""
        _check_text(request, context)
        channel = self._channel
        call: Any
        if isinstance(request, ChatRequest):
            message: Any = _chat_message(chat_pb2.StreamCompleteRequest, request, context)
            call = self._chat.StreamComplete(message, metadata=channel.metadata(), timeout=channel.timeout)
            to_delta: Callable[[Any], ChatDelta] = results_mapping.delta_from_pb
        else:
            message = chat_pb2.StreamCompleteTextRequest(
                model=request.model, prompt=request.prompt, options=chat_mapping.text_options_to_pb(request)
            )
            call = self._chat.StreamCompleteText(
                message, metadata=channel.metadata(), timeout=channel.timeout
            )
            to_delta = results_mapping.text_delta_from_pb
        pieces = stream_pieces(call, channel)
        try:
            first = await anext(pieces, None)
        except BaseException:
            await pieces.aclose()
            raise
        if first is None:
            return ChatStream(_empty(), id="", conversation_id=None)
        conversation = None
        if isinstance(first, chat_pb2.StreamCompleteResponse) and first.HasField("conversation_id"):
            conversation = first.conversation_id
        return ChatStream(_deltas(first, pieces, to_delta), id=first.id, conversation_id=conversation)


async def _empty() -> AsyncIterator[ChatDelta]:
    return
    yield  # pragma: no cover


async def _deltas(
    first: Any, rest: AsyncGenerator[Any, None], to_delta: Callable[[Any], ChatDelta]
) -> AsyncIterator[ChatDelta]:
    try:
        yield to_delta(first)
        async for piece in rest:
            yield to_delta(piece)
    finally:
        await rest.aclose()


def _check_text(request: GenerationRequest, context: CallContext) -> None:
    """What protobuf cannot encode is the client's error, named as the core would name it, not a failure
    of this process."""
    check_request_text(request)
    check_text(context.user or "", "user")


def _chat_message(kind: Any, request: ChatRequest, context: CallContext) -> Any:
    return kind(
        model=request.model,
        messages=[chat_mapping.message_to_pb(m) for m in request.messages],
        options=chat_mapping.completion_options_to_pb(
            request,
            conversation_id=context.conversation_id,
            user=context.user,
            previous_completion_id=context.previous_completion_id,
            store=context.log,
        ),
    )


class RemoteApplication:
    """The application of a remote core (``mindfu_core.application.Application``)."""

    def __init__(self, channel: Channel, defaults: Defaults, *, anonymous_as_own_key: bool = False) -> None:
        self._channel = channel
        self.chat = RemoteChat(channel)
        self.documents = RemoteDocuments(channel, defaults)
        self.retrieval = RemoteRetrieval(channel, defaults)
        self.embeddings = RemoteEmbeddings(channel)
        self.conversations = RemoteConversations(channel)
        self.training = RemoteTraining(channel)
        self.keys = RemoteKeys(channel, anonymous_as_own_key=anonymous_as_own_key)
        self._models = ModelServiceStub(channel.channel)

    async def health(self) -> Health:
        """The core's readiness and detail, and where the core is; not ready while it cannot be reached."""
        core: dict[str, Any] = {"address": self._channel.target}
        try:
            found = await self._channel.call(self._models.GetStatus, models_pb2.GetStatusRequest())
        except UpstreamUnavailable as error:
            core["status"] = "unreachable"
            core["error"] = error.message
            return Health(ready=False, detail={"role": "gateway", "core": core})
        core["status"] = "ready" if found.ready else "not_ready"
        detail = {**_integral(json_format.MessageToDict(found.detail)), "role": "gateway", "core": core}
        return Health(ready=found.ready, detail=detail)


def _integral(value: Any) -> Any:
    """JSON from a ``Struct`` with whole numbers as ints again (a Struct holds every number as a double)."""
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RemoteCore:
    """Connects to a core at start-up (waiting up to ``connect_timeout`` for it) and closes at shutdown.

    ``api_key`` is presented when the edge's caller presents none; with ``anonymous_as_own_key`` (a gateway
    whose edge takes no keys of its own) such a caller also acts as that key."""

    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 30.0,
        max_message_bytes: int = 8 * 1024 * 1024,
        anonymous_as_own_key: bool = False,
    ) -> None:
        self._target = target
        self._anonymous_as_own_key = anonymous_as_own_key
        self._api_key = api_key
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_message_bytes = max_message_bytes
        self._channel: Channel | None = None

    async def start(self) -> RemoteApplication:
        channel = Channel(
            self._target,
            api_key=self._api_key,
            timeout=self._timeout,
            max_message_bytes=self._max_message_bytes,
        )
        self._channel = channel
        stub = DocumentServiceStub(channel.channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        while True:
            try:
                found = await stub.GetDefaults(
                    documents_pb2.GetDefaultsRequest(),
                    metadata=channel.metadata(),
                    timeout=max(0.1, deadline - loop.time()),
                    wait_for_ready=True,
                )
                break
            except grpc.aio.AioRpcError as error:
                failure = channel.failure(error)
                if not isinstance(failure, UpstreamUnavailable):
                    raise ConfigurationError(
                        f"the MindFu core at {self._target} refused the gateway: {failure} "
                        "(its key: MINDFU_CORE__API_KEY, or the first of MINDFU_API_KEYS)"
                    ) from None
                if loop.time() >= deadline:
                    raise UpstreamUnavailable(
                        f"the MindFu core at {self._target} did not answer within "
                        f"{self._connect_timeout:g} s (MINDFU_CORE__ADDRESS): {failure}"
                    ) from None
        retrieval, policy = document_mapping.defaults_from_pb(found)
        log.info("gateway connected to the core at %s", self._target)
        return RemoteApplication(
            channel, Defaults(retrieval, policy), anonymous_as_own_key=self._anonymous_as_own_key
        )

    async def stop(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
