"""``mindfu conversations list|show|delete|export|feedback``: in this process, or through a server.

In this process the data directory's database is opened directly (no model is loaded); ``--server URL``
goes through a running server's HTTP or gRPC API instead. Exports are streamed line by line: memory stays flat
whatever the number of conversations.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from mindfu_cli.connect import application
from mindfu_core.application import Application
from mindfu_core.domain.conversations import (
    CompletionStatus,
    Conversation,
    ConversationFilter,
    ConversationSummary,
    Feedback,
)
from mindfu_core.domain.pages import Page
from mindfu_core.errors import MindFuError


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


async def _examples(app: Application, where: ConversationFilter) -> AsyncIterator[str]:
    async for example in app.conversations.export_examples(where):
        yield json.dumps(example, ensure_ascii=False, separators=(",", ":"))


async def _export(app: Application, where: ConversationFilter, output: str | None, quiet: bool) -> int:
    """Write every example as it arrives; a file is written beside its name and moved there when complete."""
    from tqdm import tqdm

    if output in (None, "-"):
        return await _write(_examples(app, where), sys.stdout, None)
    target = Path(output)
    partial = target.with_name(target.name + ".part")
    try:
        with (
            partial.open("w", encoding="utf-8", newline="\n") as sink,
            tqdm(unit="conv", desc="exported", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar,
        ):
            count = await _write(_examples(app, where), sink, bar)
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


def _print_list(page: Page[ConversationSummary]) -> None:
    print(f"{'ID':<40}  {'UPDATED':<16}  {'MODEL':<16} {'MSGS':>4}  {'STATUS':<9} {'RATING':>6}  TITLE")
    for item in page.items:
        rating = "" if item.rating is None else str(item.rating)
        print(
            f"{item.id:<40}  {_clock(item.updated_at):<16}  {item.model[:16]:<16} "
            f"{item.message_count:>4}  {item.last_status.value:<9} {rating:>6}  {item.title[:60]}"
        )
    if page.next_cursor:
        print(f"(more: --after {page.next_cursor})")


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _print_conversation(conversation: Conversation) -> None:
    summary = conversation.summary
    rating = "unrated" if summary.rating is None else f"rating {summary.rating}"
    print(
        f"{summary.id}  {summary.model}  {summary.message_count} messages, "
        f"{summary.completion_count} completions, last {summary.last_status.value}, {rating}"
    )
    print(f"updated {_clock(summary.updated_at)} UTC, user {summary.user or '-'}")
    for message in conversation.messages:
        label = message.role.value
        if message.tool_call_id:
            label += f" {message.tool_call_id}"
        print(f"\n[{label}] {message.content or ''}".rstrip())
        for call in message.tool_calls:
            print(f"  -> {call.name}({call.arguments})")
    for note in conversation.feedback:
        print(f"\nfeedback {note.rating}: {note.comment or ''}".rstrip())


def _as_json(result: Any) -> Any:
    """The HTTP API's JSON shape of a result, for ``--json``."""
    from mindfu_http.conversations.routes import conversation_object, feedback_object, summary_object

    if isinstance(result, Page):
        return {
            "object": "list",
            "data": [summary_object(s) for s in result.items],
            "has_more": result.has_more,
            "next_cursor": result.next_cursor,
        }
    if isinstance(result, Conversation):
        return conversation_object(result)
    if isinstance(result, Feedback):
        return feedback_object(result)
    return result


def conversations(action: str, options: Mapping[str, Any]) -> int:
    """Run ``mindfu conversations ACTION`` with the parsed command line ``options``."""
    try:
        where = conversation_filter(options)
    except ValueError as exc:
        print(f"mindfu: {exc}", file=sys.stderr)
        return 2
    conversation_id: str = options.get("conversation_id") or ""

    async def run() -> Any:
        async with application(options.get("server")) as app:
            if action == "list":
                return await app.conversations.list(
                    where, limit=options["limit"], cursor=options.get("after")
                )
            if action == "show":
                return await app.conversations.get(conversation_id)
            if action == "delete":
                await app.conversations.delete(conversation_id)
                return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
            if action == "feedback":
                return await app.conversations.add_feedback(
                    conversation_id,
                    rating=options["rating"],
                    comment=options.get("comment"),
                    completion_id=options.get("completion"),
                )
            return await _export(app, where, options.get("output"), options.get("quiet", False))

    try:
        result = asyncio.run(run())
    except BrokenPipeError:  # `mindfu conversations export | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (MindFuError, OSError) as exc:
        print(f"mindfu: {exc.message if isinstance(exc, MindFuError) else exc}", file=sys.stderr)
        return 1
    if action == "export":
        if options.get("output") not in (None, "-"):
            print(f"exported {result} conversations to {options['output']}", file=sys.stderr)
    elif options.get("json"):
        print(json.dumps(_as_json(result), indent=2, ensure_ascii=False))
    elif action == "list":
        _print_list(result)
    elif action == "show":
        _print_conversation(result)
    elif action == "delete":
        print(f"deleted {result['id']}")
    else:
        print(f"rated {result.conversation_id}: {result.rating} ({result.id})")
    return 0
