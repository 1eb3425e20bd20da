"""POST /v1/responses: the OpenAI Responses API over the chat service (retrieval and logging included).

A response is a logged chat completion: ``resp_<hex>`` names the completion ``chatcmpl-<hex>``, so
``previous_response_id`` continues after it from the conversation log. ``store: false`` keeps it out of
the log (and so out of reach of a later ``previous_response_id``).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatResult,
    FinishReason,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from mindfu_core.domain.conversations import CallContext
from mindfu_core.errors import NotFound
from mindfu_http.deps import chat_service
from mindfu_http.errors import request_id_of
from mindfu_http.openai.chat import CLIENT_CLOSED, call_context
from mindfu_http.openai.responses_schemas import ResponsesIn
from mindfu_http.openai.wire import extension
from mindfu_http.streaming import ClientGone, first_and_rest, relay, unless_disconnected

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])


def response_id(completion_id: str) -> str:
    return "resp_" + completion_id.partition("-")[2]


def completion_id(response: str, param: str = "previous_response_id") -> str:
    if not response.startswith("resp_") or len(response) < 6:
        raise NotFound(f"No response with id {response!r}.", param=param, code="response_not_found")
    return "chatcmpl-" + response[len("resp_") :]


def output_item_id(prefix: str, rid: str, index: int) -> str:
    """The id of output item ``index`` of response ``rid``: the same when the response is read back."""
    return f"{prefix}_{rid.removeprefix('resp_')}_{index}"


@router.post("/responses", summary="Create a model response (OpenAI Responses API)")
async def responses(body: ResponsesIn, request: Request) -> Response:
    core = body.to_core()
    base = call_context(request, None, body.user)
    context = CallContext(
        conversation_id=base.conversation_id,
        api_key_id=base.api_key_id,
        user=base.user,
        log=body.store is not False,
        previous_completion_id=completion_id(body.previous_response_id)
        if body.previous_response_id
        else None,
    )
    service = chat_service(request)
    shape = _Shape(body)
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
    return StreamingResponse(
        relay(writer, first, rest, request_id_of(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def _text_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else [],
    }


def _call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }


class _Shape:
    """The request's settings that every response object repeats."""

    def __init__(self, body: ResponsesIn) -> None:
        self.body = body
        self.created = int(time.time())
        fmt = (
            body.text.format.model_dump(by_alias=True, exclude_none=True)
            if body.text and body.text.format
            else None
        )
        self.settings: dict[str, Any] = {
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": body.model,
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": body.previous_response_id,
            "store": body.store is not False,
            "temperature": 1.0 if body.temperature is None else body.temperature,
            "top_p": 1.0 if body.top_p is None else body.top_p,
            "text": {"format": fmt or {"type": "text"}},
            "tool_choice": _tool_choice(body),
            "tools": [t.model_dump(exclude_none=True) for t in body.tools or ()],
            "metadata": dict(body.metadata or {}),
            "user": body.user,
        }

    def response(
        self,
        rid: str,
        *,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None = None,
        finish: FinishReason | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return response_object(
            rid,
            created=self.created,
            settings=self.settings,
            status=status,
            output=output,
            usage=usage,
            finish=finish,
            extra=extra,
        )

    def finished(self, result: ChatResult) -> dict[str, Any]:
        choice = result.choices[0]
        rid = response_id(result.id)
        return self.response(
            rid,
            status="completed",
            output=output_items(rid, choice.message),
            usage=result.usage,
            finish=choice.finish_reason,
            extra=extension(result.sources, result.conversation_id),
        )


def response_object(
    rid: str,
    *,
    created: int,
    settings: dict[str, Any],
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    finish: FinishReason | None = None,
    error: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` object: its state, output and usage, with the request's ``settings`` repeated."""
    incomplete = status == "completed" and finish is FinishReason.LENGTH
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": "incomplete" if incomplete else status,
        "error": error,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        **settings,
        "output": output,
        "truncation": "disabled",
        "usage": _usage(usage) if usage is not None else None,
        **(extra or {}),
    }


def output_items(rid: str, reply: Message) -> list[dict[str, Any]]:
    """A finished reply as output items: its text as a message, then each tool call."""
    output: list[dict[str, Any]] = []
    if reply.content:
        output.append(_text_item(output_item_id("msg", rid, 0), reply.content))
    for call in reply.tool_calls:
        output.append(_call_item(output_item_id("fc", rid, len(output)), call))
    return output


def _tool_choice(body: ResponsesIn) -> Any:
    choice = body.tool_choice
    if choice is None:
        return "auto"
    return choice if isinstance(choice, str) else choice.model_dump()


class EventWriter:
    """The event sequence of one streamed response: created, in_progress, per output item (a message with
    one output_text part, or a function call) added / deltas / done, then completed."""

    def __init__(self, shape: _Shape, rid: str, conversation_id: str | None = None) -> None:
        self.shape = shape
        self.id = rid
        self._sequence = 0
        self._output: list[dict[str, Any]] = []
        self._text: list[str] | None = None  # the open message item's text so far
        self._call: tuple[ToolCall, list[str]] | None = None  # the call being streamed, its arguments so far
        self._usage: Usage | None = None
        self._finish: FinishReason | None = None
        self._sources: tuple[Any, ...] = ()
        self._conversation_id = conversation_id

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def start(self) -> list[bytes]:
        snapshot = self.shape.response(self.id, status="in_progress", output=[])
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def delta(self, delta: ChatDelta) -> list[bytes]:
        if delta.index != 0:
            return []
        out: list[bytes] = []
        if delta.content:
            out += self._close_call()
            if self._text is None:
                out += self._open_text()
            assert self._text is not None
            self._text.append(delta.content)
            item = self._output[-1]
            out.append(
                self._event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=len(self._output) - 1,
                    content_index=0,
                    delta=delta.content,
                    logprobs=[],
                )
            )
        for call in delta.tool_calls:
            out += self._close_text() + self._close_call()
            out += self._whole_call(call)
        for piece in delta.tool_call_deltas:
            out += self._call_piece(piece)
        if delta.finish_reason is not None:
            self._finish = delta.finish_reason
        if delta.usage is not None:
            self._usage = delta.usage
        if delta.sources:
            self._sources = delta.sources
        return out

    def _open_text(self) -> list[bytes]:
        item = _text_item(output_item_id("msg", self.id, len(self._output)), "", status="in_progress")
        self._output.append(item)
        self._text = []
        index = len(self._output) - 1
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [
            self._event("response.output_item.added", output_index=index, item=item),
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            ),
        ]

    def _close_text(self) -> list[bytes]:
        if self._text is None:
            return []
        text = "".join(self._text)
        self._text = None
        index = len(self._output) - 1
        item = _text_item(self._output[index]["id"], text)
        self._output[index] = item
        part = item["content"][0]
        return [
            self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            ),
            self._event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _call_piece(self, piece: ToolCallDelta) -> list[bytes]:
        out: list[bytes] = []
        if piece.name is not None:
            out += self._close_text() + self._close_call()
            call = ToolCall(id=piece.id or f"call_{uuid.uuid4().hex}", name=piece.name, arguments="")
            self._call = (call, [])
            item = _call_item(output_item_id("fc", self.id, len(self._output)), call, "in_progress")
            self._output.append(item)
            out.append(
                self._event("response.output_item.added", output_index=len(self._output) - 1, item=item)
            )
        if piece.arguments and self._call is not None:
            self._call[1].append(piece.arguments)
            item = self._output[-1]
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=len(self._output) - 1,
                    delta=piece.arguments,
                )
            )
        return out

    def _close_call(self) -> list[bytes]:
        if self._call is None:
            return []
        call, parts = self._call
        self._call = None
        index = len(self._output) - 1
        done = _call_item(
            self._output[index]["id"], ToolCall(id=call.id, name=call.name, arguments="".join(parts))
        )
        self._output[index] = done
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=done["id"],
                output_index=index,
                name=call.name,
                arguments=done["arguments"],
            ),
            self._event("response.output_item.done", output_index=index, item=done),
        ]

    def _whole_call(self, call: ToolCall) -> list[bytes]:
        index = len(self._output)
        item_id = output_item_id("fc", self.id, index)
        done = _call_item(item_id, call)
        self._output.append(done)
        return [
            self._event(
                "response.output_item.added",
                output_index=index,
                item={**_call_item(item_id, call, "in_progress"), "arguments": ""},
            ),
            self._event(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=call.arguments,
            ),
            self._event(
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=index,
                name=call.name,
                arguments=call.arguments,
            ),
            self._event("response.output_item.done", output_index=index, item=done),
        ]

    def finish(self) -> list[bytes]:
        out = self._close_text() + self._close_call()
        final = self.shape.response(
            self.id,
            status="completed",
            output=self._output,
            usage=self._usage,
            finish=self._finish,
            extra=extension(self._sources, self._conversation_id),
        )
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return [*out, self._event(kind, response=final)]

    def failure(self, status: int, payload: dict[str, Any], request_id: str) -> list[bytes]:
        """The Responses API's ``error`` event (the stream ends there)."""
        error = payload["error"]
        code = error.get("code") or error.get("type")
        return [self._event("error", code=code, message=error["message"], param=error.get("param"))]
