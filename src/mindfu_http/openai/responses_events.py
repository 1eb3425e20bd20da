"""The event stream of a streamed Responses API response (``response.created`` ... ``response.completed``)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from mindfu_core.domain.chat import ChatDelta, FinishReason, ToolCall, ToolCallDelta, Usage
from mindfu_http.openai.responses_wire import RequestShape, call_item, output_item_id, text_item
from mindfu_http.openai.wire import extension


class EventWriter:
    """The event sequence of one streamed response: created, in_progress, per output item (a message with
    one output_text part, or a function call) added / deltas / done, then completed."""

    def __init__(self, shape: RequestShape, rid: str, conversation_id: str | None = None) -> None:
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
        item = text_item(output_item_id("msg", self.id, len(self._output)), "", status="in_progress")
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
        item = text_item(self._output[index]["id"], text)
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
            item = call_item(output_item_id("fc", self.id, len(self._output)), call, "in_progress")
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
        done = call_item(
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
        done = call_item(item_id, call)
        self._output.append(done)
        return [
            self._event(
                "response.output_item.added",
                output_index=index,
                item={**call_item(item_id, call, "in_progress"), "arguments": ""},
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
