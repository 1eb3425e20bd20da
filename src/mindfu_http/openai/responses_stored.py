"""GET /v1/responses/{id} and /input_items: a stored response read back from the conversation log.

A response is a logged chat completion, so reading one back needs nothing stored beside the log: its
output is the completion's first reply (with the item ids it was created with), its settings what the log
kept of the request (sampling, tools, tool choice, output format), and its input items the conversation
messages the request carried (a continued response's earlier turns included). What the log does not keep
reads back as its default: ``instructions`` (the first system message among the input items),
``previous_response_id`` and ``metadata``. A response created with ``store: false`` was not logged: 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from mindfu_core.domain.chat import Message, Role
from mindfu_core.domain.conversations import CompletionStatus, Conversation, LoggedCompletion
from mindfu_core.errors import InvalidRequest, NotFound
from mindfu_http.auth import tenant_of
from mindfu_http.deps import conversation_service
from mindfu_http.openai.responses_wire import (
    completion_id,
    output_items,
    response_id,
    response_object,
)
from mindfu_http.openai.wire import extension

router = APIRouter(prefix="/v1", tags=["openai"])

STATUSES = {
    CompletionStatus.OK: "completed",
    CompletionStatus.ERROR: "failed",
    CompletionStatus.CANCELLED: "cancelled",
}


async def _stored(request: Request, rid: str) -> tuple[Conversation, LoggedCompletion]:
    wanted = completion_id(rid, param="response_id")
    try:
        conversation = await conversation_service(request).of_completion(
            wanted, tenant=await tenant_of(request)
        )
    except NotFound:
        raise NotFound(
            f"No stored response with id {rid!r} (it was created with store: false, or was deleted).",
            param="response_id",
            code="response_not_found",
        ) from None
    return conversation, next(c for c in conversation.completions if c.id == wanted)


@router.get("/responses/{rid}", summary="Retrieve a stored response (OpenAI Responses API)")
async def get_response(rid: str, request: Request) -> dict[str, Any]:
    conversation, completion = await _stored(request, rid)
    return stored_response(conversation, completion)


@router.get("/responses/{rid}/input_items", summary="The input items of a stored response")
async def list_input_items(
    rid: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> dict[str, Any]:
    conversation, completion = await _stored(request, rid)
    items = input_items(rid, conversation.messages[: completion.message_count])
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise InvalidRequest(f"No input item {after!r} in response {rid!r}.", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def stored_response(conversation: Conversation, completion: LoggedCompletion) -> dict[str, Any]:
    rid = response_id(completion.id)
    reply = completion.responses[0] if completion.responses else Message(role=Role.ASSISTANT)
    error = None
    if completion.status is CompletionStatus.ERROR:
        error = {"code": "server_error", "message": completion.error or "the response failed"}
    return response_object(
        rid,
        created=int(completion.created_at.timestamp()),
        settings=_settings(completion),
        status=STATUSES[completion.status],
        output=output_items(rid, reply),
        usage=completion.usage,
        finish=completion.finish_reasons[0] if completion.finish_reasons else None,
        error=error,
        extra=extension((), conversation.id),
    )


def _settings(completion: LoggedCompletion) -> dict[str, Any]:
    """The request's settings as far as the log kept them (``request_parameters``)."""
    parameters = completion.parameters
    tools = [
        {"type": "function", **tool["function"]}
        for tool in parameters.get("tools", ())
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
    choice = parameters.get("tool_choice") or {}
    tool_choice: Any = choice.get("mode") or "auto"
    if tool_choice == "function":
        tool_choice = {"type": "function", "name": choice.get("name")}
    return {
        "instructions": None,
        "max_output_tokens": parameters.get("max_tokens"),
        "model": completion.model,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": True,
        "temperature": parameters.get("temperature", 1.0),
        "top_p": parameters.get("top_p", 1.0),
        "text": {"format": {"type": parameters.get("response_format", "text")}},
        "tool_choice": tool_choice,
        "tools": tools,
        "metadata": {},
        "user": completion.user,
    }


def input_items(rid: str, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Conversation messages as Responses input items, in order, each with an id stable across reads."""
    items: list[dict[str, Any]] = []

    def add(prefix: str, item: dict[str, Any]) -> None:
        # output items are <prefix>_<hex>_<n>; input items <prefix>_<hex>_in<n>
        items.append({"id": f"{prefix}_{rid.removeprefix('resp_')}_in{len(items)}", **item})

    for message in messages:
        if message.role is Role.TOOL:
            add(
                "fco",
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": message.content or "",
                    "status": "completed",
                },
            )
            continue
        if message.content or not message.tool_calls:
            kind = "output_text" if message.role is Role.ASSISTANT else "input_text"
            part: dict[str, Any] = {"type": kind, "text": message.content or ""}
            if kind == "output_text":
                part["annotations"] = []
            add(
                "msg",
                {"type": "message", "role": message.role.value, "content": [part], "status": "completed"},
            )
        for call in message.tool_calls:
            add(
                "fc",
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "status": "completed",
                },
            )
    return items
