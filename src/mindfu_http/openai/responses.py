"""POST /v1/responses: the OpenAI Responses API over the chat service (retrieval and logging included).

A response is a logged chat completion: ``resp_<hex>`` names the completion ``chatcmpl-<hex>``, so
``previous_response_id`` continues after it from the conversation log. ``store: false`` keeps it out of
the log (and so out of reach of a later ``previous_response_id``).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mindfu_core.domain.conversations import CallContext
from mindfu_http.deps import chat_service
from mindfu_http.errors import request_id_of
from mindfu_http.openai.chat import CLIENT_CLOSED, call_context
from mindfu_http.openai.responses_events import EventWriter
from mindfu_http.openai.responses_schemas import ResponsesIn
from mindfu_http.openai.responses_wire import RequestShape, completion_id, response_id
from mindfu_http.streaming import ClientGone, event_stream, first_and_rest, relay, unless_disconnected

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])


@router.post("/responses", summary="Create a model response (OpenAI Responses API)")
async def responses(body: ResponsesIn, request: Request) -> Response:
    core = body.to_core()
    base = call_context(request, None, body.user)
    context = CallContext(
        conversation_id=base.conversation_id,
        api_key_id=base.api_key_id,
        tenant=base.tenant,
        user=base.user,
        log=body.store is not False,
        previous_completion_id=completion_id(body.previous_response_id)
        if body.previous_response_id
        else None,
    )
    service = chat_service(request)
    shape = RequestShape(body)
    if not body.stream:
        try:
            result = await unless_disconnected(request, service.complete(core, context))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
        return JSONResponse(shape.finished(result))
    deltas = await service.stream(core, context)
    try:
        first, rest = await unless_disconnected(request, first_and_rest(deltas))
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    writer = EventWriter(shape, response_id(deltas.id), deltas.conversation_id)
    return event_stream(relay(writer, first, rest, request_id_of(request)))
