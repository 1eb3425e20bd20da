"""Text that can leave the process: every string MindFu hands an engine, a tokenizer or a database must be
valid Unicode. JSON lets a client send a lone surrogate (``"\\ud800"``), which no UTF-8 encoder takes."""

from __future__ import annotations

from collections.abc import Mapping

from mindfu_core.domain.chat import ChatRequest, GenerationRequest
from mindfu_core.errors import InvalidRequest


def check_text(text: str, param: str) -> None:
    """``InvalidRequest`` naming ``param`` when ``text`` holds a lone surrogate (it cannot be UTF-8)."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidRequest(
            f"{param} holds a lone surrogate (U+{ord(text[error.start]):04X} at {error.start}): "
            "not valid Unicode text",
            param=param,
        ) from None


def check_json_text(value: object, param: str) -> None:
    """``check_text`` on every string (keys included) of a JSON value, walked without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            check_text(item, param)
        elif isinstance(item, Mapping):
            for key, child in item.items():
                check_text(str(key), param)
                pending.append(child)
        elif isinstance(item, (list, tuple)):
            pending.extend(item)


def check_request_text(request: GenerationRequest) -> None:
    """``check_text`` on every string of a generation request, each error naming its field (an edge that
    passes a request on, as a gateway does, checks it before encoding it)."""
    if isinstance(request, ChatRequest):
        for position, message in enumerate(request.messages):
            where = f"messages[{position}]"
            check_text(message.content or "", f"{where}.content")
            check_json_text([message.name or "", message.tool_call_id or ""], where)
            for call in message.tool_calls:
                check_json_text([call.id, call.name, call.arguments], f"{where}.tool_calls")
        for position, tool in enumerate(request.tools):
            check_json_text([tool.name, tool.description, tool.parameters], f"tools[{position}].function")
        if request.response_format.schema is not None:
            check_json_text(request.response_format.schema, "response_format")
    else:
        check_text(request.prompt, "prompt")
    for stop in request.sampling.stop:
        check_text(stop, "stop")
