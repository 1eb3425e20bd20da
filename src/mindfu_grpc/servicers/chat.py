"""mindfu.v1.ChatService and mindfu.v1.ModelService."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf.struct_pb2 import Struct

import grpc
from mindfu_core.application import Application
from mindfu_core.domain.conversations import CallContext
from mindfu_grpc._pb.mindfu.v1 import chat_pb2 as pb
from mindfu_grpc._pb.mindfu.v1 import chat_pb2_grpc, models_pb2, models_pb2_grpc
from mindfu_grpc.auth import caller
from mindfu_grpc.mapping import chat as mapping
from mindfu_grpc.mapping import results as results_mapping
from mindfu_grpc.mapping.common import optional

Context = grpc.aio.ServicerContext[Any, Any]


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    """Completions; a cancelled call or a passed deadline closes the stream, which stops the engine."""

    def __init__(self, application: Application) -> None:
        self._app = application

    def _call_context(self, options: pb.CompletionOptions, context: Context) -> CallContext:
        return CallContext(
            conversation_id=optional(options, "conversation_id"),
            api_key_id=caller().key_id,
            tenant=caller().tenant,
            user=optional(options, "user"),
            previous_completion_id=optional(options, "previous_completion_id"),
            log=optional(options, "store") is not False,
        )

    async def Complete(self, request: pb.CompleteRequest, context: Context) -> pb.CompleteResponse:
        core = mapping.chat_request_from_pb(
            request.model, request.messages, request.options, self._app.retrieval.options
        )
        result = await self._app.chat.complete(core, self._call_context(request.options, context))
        return results_mapping.result_to_pb(result, int(time.time()))

    async def StreamComplete(
        self, request: pb.StreamCompleteRequest, context: Context
    ) -> AsyncIterator[pb.StreamCompleteResponse]:
        core = mapping.chat_request_from_pb(
            request.model, request.messages, request.options, self._app.retrieval.options
        )
        stream = await self._app.chat.stream(core, self._call_context(request.options, context))
        try:
            async for delta in stream:
                yield results_mapping.delta_to_pb(
                    delta, completion_id=stream.id, model=core.model, conversation_id=stream.conversation_id
                )
        finally:
            await stream.aclose()

    async def CountTokens(self, request: pb.CountTokensRequest, context: Context) -> pb.CountTokensResponse:
        core = mapping.chat_request_from_pb(
            request.model, request.messages, request.options, self._app.retrieval.options
        )
        return pb.CountTokensResponse(input_tokens=await self._app.chat.count_tokens(core))

    async def CompleteText(
        self, request: pb.CompleteTextRequest, context: Context
    ) -> pb.CompleteTextResponse:
        core = mapping.text_request_from_pb(request.model, request.prompt, request.options)
        result = await self._app.chat.complete(core)
        return results_mapping.text_result_to_pb(result, int(time.time()))

    async def StreamCompleteText(
        self, request: pb.StreamCompleteTextRequest, context: Context
    ) -> AsyncIterator[pb.StreamCompleteTextResponse]:
        core = mapping.text_request_from_pb(request.model, request.prompt, request.options)
        stream = await self._app.chat.stream(core)
        try:
            async for delta in stream:
                yield results_mapping.text_delta_to_pb(delta, completion_id=stream.id, model=core.model)
        finally:
            await stream.aclose()


class ModelServicer(models_pb2_grpc.ModelServiceServicer):
    """The served models."""

    def __init__(self, application: Application) -> None:
        self._app = application

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        return models_pb2.ListModelsResponse(
            models=[
                results_mapping.model_to_pb(info)
                for info in await self._app.chat.list_models(tenant=caller().tenant)
            ]
        )

    async def GetModel(
        self, request: models_pb2.GetModelRequest, context: Context
    ) -> models_pb2.GetModelResponse:
        return models_pb2.GetModelResponse(
            model=results_mapping.model_to_pb(
                await self._app.chat.get_model(request.id, tenant=caller().tenant)
            )
        )

    async def GetStatus(
        self, request: models_pb2.GetStatusRequest, context: Context
    ) -> models_pb2.GetStatusResponse:
        found = await self._app.health()
        detail = Struct()
        detail.update(json.loads(json.dumps(found.detail, default=str)))  # plain JSON values only
        return models_pb2.GetStatusResponse(ready=found.ready, detail=detail)
