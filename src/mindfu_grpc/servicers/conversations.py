"""mindfu.v1.ConversationService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
from mindfu_core.application import Application
from mindfu_core.domain.conversations import ConversationFilter
from mindfu_grpc._pb.mindfu.v1 import conversations_pb2 as pb
from mindfu_grpc._pb.mindfu.v1 import conversations_pb2_grpc
from mindfu_grpc.auth import caller
from mindfu_grpc.mapping import conversations as mapping
from mindfu_grpc.mapping.common import optional

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 20


def _own(where: ConversationFilter) -> ConversationFilter:
    """``where``, kept to the caller's tenant."""
    return replace(where, tenant=caller().tenant)


class ConversationServicer(conversations_pb2_grpc.ConversationServiceServicer):
    """Review of the logged conversations; the export streams one conversation a message."""

    def __init__(self, application: Application) -> None:
        self._app = application

    async def ListConversations(
        self, request: pb.ListConversationsRequest, context: Context
    ) -> pb.ListConversationsResponse:
        page = await self._app.conversations.list(
            _own(mapping.filter_from_pb(request.filter)),
            limit=request.limit or DEFAULT_PAGE,
            cursor=request.cursor or None,
        )
        return pb.ListConversationsResponse(
            conversations=[mapping.summary_to_pb(s) for s in page.items], next_cursor=page.next_cursor or ""
        )

    async def GetConversation(
        self, request: pb.GetConversationRequest, context: Context
    ) -> pb.GetConversationResponse:
        if request.completion_id:
            found = await self._app.conversations.of_completion(request.completion_id, tenant=caller().tenant)
        else:
            found = await self._app.conversations.get(request.id, tenant=caller().tenant)
        return pb.GetConversationResponse(conversation=mapping.conversation_to_pb(found))

    async def DeleteConversation(
        self, request: pb.DeleteConversationRequest, context: Context
    ) -> pb.DeleteConversationResponse:
        await self._app.conversations.delete(request.id, tenant=caller().tenant)
        return pb.DeleteConversationResponse()

    async def AddFeedback(self, request: pb.AddFeedbackRequest, context: Context) -> pb.AddFeedbackResponse:
        feedback = await self._app.conversations.add_feedback(
            request.conversation_id,
            rating=request.rating,
            comment=optional(request, "comment"),
            completion_id=optional(request, "completion_id"),
            tenant=caller().tenant,
        )
        return pb.AddFeedbackResponse(feedback=mapping.feedback_to_pb(feedback))

    async def ExportConversations(
        self, request: pb.ExportConversationsRequest, context: Context
    ) -> AsyncIterator[pb.ExportConversationsResponse]:
        async for conversation in self._app.conversations.export(
            _own(mapping.filter_from_pb(request.filter))
        ):
            yield pb.ExportConversationsResponse(conversation=mapping.conversation_to_pb(conversation))
