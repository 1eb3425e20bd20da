"""``mindfu conversations list|show|delete|export|feedback``: in this process, or through a server.

In this process the data directory's database is opened directly (no model is loaded); ``--server URL``
goes through a running server's HTTP API instead. Exports are streamed line by line: memory stays flat
whatever the number of conversations.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from mindfu_cli.remote import RemoteApi, RemoteError
from mindfu_core.domain.conversations import CompletionStatus, ConversationFilter
from mindfu_core.errors import MindFuError


class Conversations(Protocol):
    async def list(self, where: ConversationFilter, *, limit: int, after: str | None) -> dict[str, Any]: ...

    async def get(self, conversation_id: str) -> dict[str, Any]: ...

    async def delete(self, conversation_id: str) -> dict[str, Any]: ...

    async def feedback(
        self, conversation_id: str, *, rating: int, comment: str | None, completion_id: str | None
    ) -> dict[str, Any]: ...

    def export(self, where: ConversationFilter) -> AsyncIterator[str]:
        """Fine-tuning examples, one JSON document per item (without the newline)."""
        ...

    async def aclose(self) -> None: ...


class LocalConversations:
    """The conversation service of this process's container (only the database is opened)."""

    def __init__(self) -> None:
        from mindfu_adapters.container import build_container

        self._container = build_container()
        self._service: Any = None

    async def _started(self) -> Any:
        if self._service is None:
            from mindfu_adapters.services import start_conversations

            self._service = await start_conversations(self._container)
        return self._service

    async def list(self, where: ConversationFilter, *, limit: int, after: str | None) -> dict[str, Any]:
        from mindfu_http.conversations.routes import summary_object

        page = await (await self._started()).list(where, limit=limit, cursor=after)
        return {
            "object": "list",
            "data": [summary_object(s) for s in page.items],
            "has_more": page.next_cursor is not None,
            "next_cursor": page.next_cursor,
        }

    async def get(self, conversation_id: str) -> dict[str, Any]:
        from mindfu_http.conversations.routes import conversation_object

        return conversation_object(await (await self._started()).get(conversation_id))

    async def delete(self, conversation_id: str) -> dict[str, Any]:
        await (await self._started()).delete(conversation_id)
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def feedback(
        self, conversation_id: str, *, rating: int, comment: str | None, completion_id: str | None
    ) -> dict[str, Any]:
        from mindfu_http.conversations.routes import feedback_object

        service = await self._started()
        note = await service.add_feedback(
            conversation_id, rating=rating, comment=comment, completion_id=completion_id
        )
        return feedback_object(note)

    async def export(self, where: ConversationFilter) -> AsyncIterator[str]:
        service = await self._started()
        async for example in service.export_examples(where):
            yield json.dumps(example, ensure_ascii=False, separators=(",", ":"))

    async def aclose(self) -> None:
        from mindfu_adapters.services import stop

        await stop(self._container)


class RemoteConversations(RemoteApi):
    """A running MindFu server's conversations API (``--server``)."""

    async def list(self, where: ConversationFilter, *, limit: int, after: str | None) -> dict[str, Any]:
        params = {**query_params(where), "limit": limit}
        if after:
            params["after"] = after
        return await self._call("GET", "/v1/conversations", params=params)

    async def get(self, conversation_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/conversations/{conversation_id}")

    async def delete(self, conversation_id: str) -> dict[str, Any]:
        return await self._call("DELETE", f"/v1/conversations/{conversation_id}")

    async def feedback(
        self, conversation_id: str, *, rating: int, comment: str | None, completion_id: str | None
    ) -> dict[str, Any]:
        body = {"rating": rating, "comment": comment, "completion_id": completion_id}
        return await self._call("POST", f"/v1/conversations/{conversation_id}/feedback", json=body)

    def export(self, where: ConversationFilter) -> AsyncIterator[str]:
        return self._lines("/v1/conversations/export", params=query_params(where))


def query_params(where: ConversationFilter) -> dict[str, Any]:
    """A filter as the HTTP API's query parameters (unset fields left out)."""
    params: dict[str, Any] = {}
    for spec in fields(where):
        value = getattr(where, spec.name)
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, CompletionStatus):
            value = value.value
        params[spec.name] = value
    return params


def _time(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option} is not an ISO 8601 date or time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def conversation_filter(options: Mapping[str, Any]) -> ConversationFilter:
    """The filter the command line asks for (``ValueError`` for a time that does not parse)."""
    status = options.get("status")
    return ConversationFilter(
        since=_time("--since", options.get("since")),
        until=_time("--until", options.get("until")),
        model=options.get("model"),
        status=CompletionStatus(status) if status else None,
        min_rating=options.get("min_rating"),
        max_rating=options.get("max_rating"),
        rated=options.get("rated"),
        min_turns=options.get("min_turns"),
        min_response_chars=options.get("min_response_chars"),
        max_response_chars=options.get("max_response_chars"),
        user=options.get("user"),
    )


def _client(server: str | None) -> Conversations:
    if server:
        return RemoteConversations(server, os.environ.get("MINDFU_API_KEY"))
    return LocalConversations()


async def _export(client: Conversations, where: ConversationFilter, output: str | None, quiet: bool) -> int:
    """Write every example as it arrives; a file is written beside its name and moved there when complete."""
    from tqdm import tqdm

    if output in (None, "-"):
        return await _write(client.export(where), sys.stdout, None)
    target = Path(output)
    partial = target.with_name(target.name + ".part")
    try:
        with (
            partial.open("w", encoding="utf-8", newline="\n") as sink,
            tqdm(unit="conv", desc="exported", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar,
        ):
            count = await _write(client.export(where), sink, bar)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return count


async def _write(lines: AsyncIterator[str], sink: IO[str], bar: Any) -> int:
    count = 0
    async for line in lines:
        sink.write(line + "\n")
        count += 1
        if bar is not None:
            bar.update(1)
    sink.flush()
    return count


def _print_list(page: Mapping[str, Any]) -> None:
    print(f"{'ID':<40}  {'UPDATED':<16}  {'MODEL':<16} {'MSGS':>4}  {'STATUS':<9} {'RATING':>6}  TITLE")
    for item in page["data"]:
        rating = "" if item["rating"] is None else str(item["rating"])
        print(
            f"{item['id']:<40}  {_clock(item['updated_at']):<16}  {item['model'][:16]:<16} "
            f"{item['message_count']:>4}  {item['last_status']:<9} {rating:>6}  {item['title'][:60]}"
        )
    if page.get("next_cursor"):
        print(f"(more: --after {page['next_cursor']})")


def _clock(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M")


def _print_conversation(conversation: Mapping[str, Any]) -> None:
    rating = "unrated" if conversation["rating"] is None else f"rating {conversation['rating']}"
    print(
        f"{conversation['id']}  {conversation['model']}  {conversation['message_count']} messages, "
        f"{conversation['completion_count']} completions, last {conversation['last_status']}, {rating}"
    )
    print(f"updated {_clock(conversation['updated_at'])} UTC, user {conversation['user'] or '-'}")
    for message in conversation["messages"]:
        label = message["role"]
        if message.get("tool_call_id"):
            label += f" {message['tool_call_id']}"
        print(f"\n[{label}] {message['content'] or ''}".rstrip())
        for call in message.get("tool_calls", []):
            print(f"  -> {call['function']['name']}({call['function']['arguments']})")
    for note in conversation["feedback"]:
        print(f"\nfeedback {note['rating']}: {note['comment'] or ''}".rstrip())


def conversations(action: str, options: Mapping[str, Any]) -> int:
    """Run ``mindfu conversations ACTION`` with the parsed command line ``options``."""
    try:
        where = conversation_filter(options)
    except ValueError as exc:
        print(f"mindfu: {exc}", file=sys.stderr)
        return 2
    conversation_id: str = options.get("conversation_id") or ""

    async def run() -> Any:
        client = _client(options.get("server"))
        try:
            if action == "list":
                return await client.list(where, limit=options["limit"], after=options.get("after"))
            if action == "show":
                return await client.get(conversation_id)
            if action == "delete":
                return await client.delete(conversation_id)
            if action == "feedback":
                return await client.feedback(
                    conversation_id,
                    rating=options["rating"],
                    comment=options.get("comment"),
                    completion_id=options.get("completion"),
                )
            return await _export(client, where, options.get("output"), options.get("quiet", False))
        finally:
            await client.aclose()

    try:
        result = asyncio.run(run())
    except BrokenPipeError:  # `mindfu conversations export | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (MindFuError, RemoteError, OSError) as exc:
        print(f"mindfu: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    if action == "export":
        if options.get("output") not in (None, "-"):
            print(f"exported {result} conversations to {options['output']}", file=sys.stderr)
    elif options.get("json"):
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif action == "list":
        _print_list(result)
    elif action == "show":
        _print_conversation(result)
    elif action == "delete":
        print(f"deleted {result['id']}")
    else:
        print(f"rated {result['conversation_id']}: {result['rating']} ({result['id']})")
    return 0
