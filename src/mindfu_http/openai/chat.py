"""POST /v1/chat/completions and POST /v1/completions."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mindfu_core.domain.chat import GenerationRequest
from mindfu_core.domain.conversations import CallContext
from mindfu_core.domain.principals import DEFAULT_TENANT, Principal
from mindfu_core.errors import InvalidRequest
from mindfu_http.deps import chat_service, retriever
from mindfu_http.errors import request_id_of
from mindfu_http.openai import wire
from mindfu_http.openai.schemas import ChatCompletionIn, CompletionIn
from mindfu_http.responses import TokenCount
from mindfu_http.streaming import ClientGone, event_stream, first_and_rest, relay, unless_disconnected

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])

CONVERSATION_HEADER = "X-MindFu-Conversation-Id"
# Status 499 is nginx's "client closed request": nobody reads it, but logs say what happened.
CLIENT_CLOSED = 499


@router.post("/chat/completions", summary="Create a chat completion (OpenAI-compatible)")
async def chat_completions(body: ChatCompletionIn, request: Request) -> Response:
    core = body.to_core()
    overrides = body.mindfu.retrieval_overrides() if body.mindfu is not None else None
    if overrides is not None:
        core = replace(core, retrieval=retriever(request).options(overrides))
    context = call_context(request, body.mindfu.conversation_id if body.mindfu else None, body.user)
    if body.mindfu is not None:
        context = replace(
            context, log=body.mindfu.log, previous_completion_id=body.mindfu.previous_completion_id
        )
    return await _generate(
        request, core, chat=True, stream=bool(body.stream), usage=body.include_usage, context=context
    )


@router.post("/chat/completions/count_tokens", summary="Count the prompt tokens of a chat completion request")
async def count_chat_tokens(body: ChatCompletionIn, request: Request) -> TokenCount:
    """The tokens the model would read for this request (its messages and tools, in its chat template)."""
    return {
        "object": "chat.completion.count_tokens",
        "input_tokens": await chat_service(request).count_tokens(body.to_core()),
    }


def call_context(request: Request, conversation_id: str | None, user: str | None) -> CallContext:
    """The conversation named by the extension field or the header (they must agree), the key, the user."""
    header = request.headers.get(CONVERSATION_HEADER)
    if header and conversation_id and header != conversation_id:
        raise InvalidRequest(
            f"the {CONVERSATION_HEADER} header and mindfu.conversation_id name different conversations",
            param="mindfu.conversation_id",
        )
    principal: Principal | None = getattr(request.state, "principal", None)
    return CallContext(
        conversation_id=conversation_id or header or None,
        api_key_id=principal.key_id if principal is not None else None,
        tenant=principal.tenant if principal is not None else DEFAULT_TENANT,
        user=user,
    )


@router.post("/completions", summary="Create a text completion (OpenAI-compatible, legacy)")
async def completions(body: CompletionIn, request: Request) -> Response:
    return await _generate(
        request, body.to_core(), chat=False, stream=bool(body.stream), usage=body.include_usage
    )


async def _generate(
    request: Request,
    core: GenerationRequest,
    *,
    chat: bool,
    stream: bool,
    usage: bool,
    context: CallContext | None = None,
) -> Response:
    service = chat_service(request)
    context = context or CallContext()
    if not stream:
        try:
            result = await unless_disconnected(request, service.complete(core, context))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
        build = wire.chat_completion if chat else wire.text_completion
        return JSONResponse(
            build(result, completion_id=result.id, created=int(time.time())),
            headers=_conversation_header(result.conversation_id),
        )
    deltas = await service.stream(core, context)
    try:
        first, rest = await unless_disconnected(request, first_and_rest(deltas))
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    writer = wire.ChunkWriter(
        model=core.model,
        chat=chat,
        include_usage=usage,
        completion_id=deltas.id,
        conversation_id=deltas.conversation_id,
    )
    return event_stream(
        relay(writer, first, rest, request_id_of(request)), _conversation_header(deltas.conversation_id)
    )


def _conversation_header(conversation_id: str | None) -> dict[str, str]:
    return {CONVERSATION_HEADER: conversation_id} if conversation_id else {}
