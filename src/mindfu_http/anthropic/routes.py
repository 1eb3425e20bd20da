"""POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages API (Claude Code's protocol).

Requests go through the same chat service as chat completions, so retrieval and conversation logging
apply alike. Model names that Anthropic clients send are mapped to served models by settings.
"""

from __future__ import annotations

import fnmatch

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mindfu_http.anthropic import wire
from mindfu_http.anthropic.schemas import CountTokensIn, MessagesIn
from mindfu_http.deps import chat_service
from mindfu_http.errors import request_id_of
from mindfu_http.openai.chat import CLIENT_CLOSED, call_context
from mindfu_http.streaming import ClientGone, event_stream, first_and_rest, relay, unless_disconnected

router = APIRouter(prefix="/v1", tags=["anthropic"])


def served_model(request: Request, requested: str) -> str:
    """The served model for a requested name: the first matching ``anthropic.model_map`` pattern's target
    (empty: the default model), or the name itself."""
    for pattern, target in request.app.state.anthropic_models.items():
        if fnmatch.fnmatchcase(requested, pattern):
            return target or str(request.app.state.default_model)
    return requested


@router.post("/messages/count_tokens", summary="Count the tokens of a message request (Anthropic)")
async def count_tokens(body: CountTokensIn, request: Request) -> JSONResponse:
    core = body.to_core(served_model(request, body.model))
    return JSONResponse({"input_tokens": await chat_service(request).count_tokens(core)})


@router.post("/messages", summary="Create a message (Anthropic Messages API)")
async def messages(body: MessagesIn, request: Request) -> Response:
    core = body.to_core(served_model(request, body.model))
    context = call_context(request, None, body.user)
    service = chat_service(request)
    if not body.stream:
        try:
            result = await unless_disconnected(request, service.complete(core, context))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
        return JSONResponse(wire.message(result, model=body.model))
    deltas = await service.stream(core, context)
    try:
        first, rest = await unless_disconnected(request, first_and_rest(deltas))
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    writer = wire.EventWriter(
        completion_id=deltas.id, model=body.model, conversation_id=deltas.conversation_id
    )
    return event_stream(relay(writer, first, rest, request_id_of(request)))
