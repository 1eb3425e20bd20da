"""The Responses API's objects: ids (``resp_<hex>`` names the chat completion ``chatcmpl-<hex>``, output
items ``<prefix>_<hex>_<n>``), response objects with the request's settings repeated, and output items."""

from __future__ import annotations

import time
from typing import Any

from mindfu_core.domain.chat import ChatResult, FinishReason, Message, ToolCall, Usage
from mindfu_core.errors import NotFound
from mindfu_http.openai.responses_schemas import NAMESPACE_SEPARATOR, ResponsesIn
from mindfu_http.openai.wire import extension


def response_id(completion_id: str) -> str:
    return "resp_" + completion_id.partition("-")[2]


def completion_id(response: str, param: str = "previous_response_id") -> str:
    if not response.startswith("resp_") or len(response) < 6:
        raise NotFound(f"No response with id {response!r}.", param=param, code="response_not_found")
    return "chatcmpl-" + response[len("resp_") :]


def output_item_id(prefix: str, rid: str, index: int) -> str:
    """The id of output item ``index`` of response ``rid``: the same when the response is read back."""
    return f"{prefix}_{rid.removeprefix('resp_')}_{index}"


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def text_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else [],
    }


def call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    namespace, _, name = call.name.rpartition(NAMESPACE_SEPARATOR)  # a namespaced function's call
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.id,
        **({"namespace": namespace} if namespace else {}),
        "name": name,
        "arguments": call.arguments,
        "status": status,
    }


class RequestShape:
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
            "tool_choice": tool_choice_of(body),
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
        "usage": usage_object(usage) if usage is not None else None,
        **(extra or {}),
    }


def output_items(rid: str, reply: Message) -> list[dict[str, Any]]:
    """A finished reply as output items: its text as a message, then each tool call."""
    output: list[dict[str, Any]] = []
    if reply.content:
        output.append(text_item(output_item_id("msg", rid, 0), reply.content))
    for call in reply.tool_calls:
        output.append(call_item(output_item_id("fc", rid, len(output)), call))
    return output


def tool_choice_of(body: ResponsesIn) -> Any:
    choice = body.tool_choice
    if choice is None:
        return "auto"
    return choice if isinstance(choice, str) else choice.model_dump()
