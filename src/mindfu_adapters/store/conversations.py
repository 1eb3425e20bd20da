"""SqlConversationStore: conversations, messages, completions and feedback in SQL (SQLite or PostgreSQL).

Writes come in batches from the conversation log's writer: one transaction per batch, a handful of
statements whatever its size (existing ids, conversation states, then bulk inserts and updates).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mindfu_adapters.store import conversation_rows as rowmap
from mindfu_adapters.store.sql import Database
from mindfu_adapters.store.tables import completions, conversations, feedback, messages
from mindfu_core.domain.chat import Message, Role
from mindfu_core.domain.conversation_merge import conversation_title, plan_merge
from mindfu_core.domain.conversations import (
    CompletionRecord,
    Conversation,
    ConversationFilter,
    ConversationPage,
    Feedback,
    chain_hashes,
    foreign_branch,
)
from mindfu_core.errors import NotFound

_Known = tuple[str, str, int]  # a message's chain hash, role and characters


@dataclass(slots=True)
class _State:
    """A conversation's summary while a batch is applied to it."""

    row: dict[str, Any]
    new: bool
    # (chain hash, role, characters) per stored message, loaded only when a batch diverges from it
    known: list[_Known] | None = None
    changed: bool = False


@dataclass(slots=True)
class _Batch:
    states: dict[str, _State] = field(default_factory=dict)
    message_rows: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    truncations: dict[str, int] = field(default_factory=dict)  # conversation -> first position deleted
    completion_rows: list[dict[str, Any]] = field(default_factory=list)


class SqlConversationStore:
    """A ``ConversationStore`` over the shared ``Database``."""

    def __init__(self, database: Database, *, page_size: int = 500) -> None:
        self._db = database
        self._page_size = page_size

    # --- writing -------------------------------------------------------------------------------------

    async def record(self, records: Sequence[CompletionRecord]) -> int:
        unique: dict[str, CompletionRecord] = {}
        for record in records:
            unique.setdefault(record.id, record)
        if not unique:
            return 0
        async with self._db.transaction(f"logging {len(unique)} completions") as connection:
            existing = await self._existing_ids(connection, list(unique))
            fresh = [r for r in unique.values() if r.id not in existing]
            if not fresh:
                return 0
            batch = _Batch()
            await self._load_states(connection, {r.conversation_id for r in fresh}, batch)
            for record in fresh:
                await self._apply(connection, record, batch)
            await self._write(connection, batch)
        return len(fresh)

    async def _existing_ids(self, connection: Any, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            result = await connection.execute(
                sa.select(completions.c.id).where(rowmap.one_of(completions.c.id, chunk))
            )
            found.update(result.scalars())
        return found

    async def _load_states(self, connection: Any, ids: set[str], batch: _Batch) -> None:
        ordered = sorted(ids)
        for start in range(0, len(ordered), 1000):
            chunk = ordered[start : start + 1000]
            result = await connection.execute(
                conversations.select().where(rowmap.one_of(conversations.c.id, chunk))
            )
            for row in result.mappings():
                batch.states[row["id"]] = _State(row=dict(row), new=False)

    async def _apply(self, connection: Any, record: CompletionRecord, batch: _Batch) -> None:
        transcript = record.transcript
        hashes = chain_hashes(transcript)
        state = batch.states.get(record.conversation_id)
        if state is not None and state.row["tenant"] != record.tenant:
            # another tenant's conversation is never written to: the record starts one of its own
            record = replace(record, conversation_id=foreign_branch(record))
            if record.conversation_id not in batch.states:  # a branch an earlier batch started
                await self._load_states(connection, {record.conversation_id}, batch)
            state = batch.states.get(record.conversation_id)
        if state is None:
            state = batch.states[record.conversation_id] = _State(
                row=rowmap.new_conversation(record), new=True, known=[]
            )
        row = state.row
        stored = {"stored_count": row["message_count"], "head_hash": row["head_hash"]}
        plan = plan_merge(hashes, **stored)
        if plan is None:  # the transcript departs from the head: where, the stored hashes say
            if state.known is None:
                state.known = await self._known(connection, record.conversation_id, batch)
            plan = plan_merge(hashes, **stored, stored_hashes=[known[0] for known in state.known])
            assert plan is not None
        if plan.truncates:
            self._truncate(record.conversation_id, plan.keep, state, batch)
        for position in plan.writes:
            message = transcript[position]
            batch.message_rows[(record.conversation_id, position)] = rowmap.message_row(
                record.conversation_id, position, message, hashes[position]
            )
            if state.known is not None:
                state.known.append((hashes[position], message.role.value, len(message.content or "")))
            if message.role is Role.ASSISTANT:
                rowmap.count_reply(row, len(message.content or ""))
        if plan.writes:
            row["message_count"] = plan.count
            row["head_hash"] = hashes[-1]
        if not row["title"]:
            row["title"] = conversation_title(transcript)
        row["updated_at"] = max(row["updated_at"], record.created_at)
        row["model"] = record.model
        row["completion_count"] += 1
        row["last_status"] = record.status.value
        row["api_key_id"] = record.api_key_id
        row["user_name"] = record.user
        row["tools"] = rowmap.tools_of(record.parameters)
        state.changed = True
        batch.completion_rows.append(rowmap.completion_row(record))

    async def _known(self, connection: Any, conversation_id: str, batch: _Batch) -> list[_Known]:
        """(chain hash, role, characters) of every message stored, or written earlier in this batch."""
        stored = await self._stored_hashes(connection, conversation_id)
        rows = batch.message_rows.items()
        pending = sorted((position, r) for (cid, position), r in rows if cid == conversation_id)
        return stored + [(r["chain_hash"], r["role"], len(r["content"] or "")) for _, r in pending]

    def _truncate(self, conversation_id: str, keep: int, state: _State, batch: _Batch) -> None:
        assert state.known is not None
        del state.known[keep:]
        for key in [k for k in batch.message_rows if k[0] == conversation_id and k[1] >= keep]:
            del batch.message_rows[key]
        if not state.new:
            batch.truncations[conversation_id] = min(keep, batch.truncations.get(conversation_id, keep))
        row = state.row
        row["message_count"] = keep
        row["head_hash"] = state.known[-1][0] if state.known else None
        row["assistant_turns"] = 0
        row["min_response_chars"] = row["max_response_chars"] = None
        for _, role, chars in state.known:
            if role == Role.ASSISTANT.value:
                rowmap.count_reply(row, chars)

    async def _stored_hashes(self, connection: Any, conversation_id: str) -> list[_Known]:
        query = (
            sa.select(
                messages.c.chain_hash,
                messages.c.role,
                sa.func.coalesce(sa.func.length(messages.c.content), 0),
            )
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.position)
        )
        result = await connection.execute(query)
        return [(h, role, int(chars)) for h, role, chars in result]

    async def _write(self, connection: Any, batch: _Batch) -> None:
        for conversation_id, first in batch.truncations.items():
            await connection.execute(
                messages.delete().where(
                    messages.c.conversation_id == conversation_id, messages.c.position >= first
                )
            )
        new_rows = [s.row for s in batch.states.values() if s.new]
        if new_rows:
            await connection.execute(conversations.insert(), new_rows)
        updated = [s.row for s in batch.states.values() if s.changed and not s.new]
        if updated:
            columns = [c.name for c in conversations.columns if c.name not in ("id", "created_at")]
            statement = (
                conversations.update()
                .where(conversations.c.id == sa.bindparam("b_id"))
                .values({name: sa.bindparam(f"b_{name}") for name in columns})
            )
            await connection.execute(
                statement, [{f"b_{k}": v for k, v in row.items() if k != "created_at"} for row in updated]
            )
        if batch.message_rows:
            await connection.execute(messages.insert(), list(batch.message_rows.values()))
        await connection.execute(completions.insert(), batch.completion_rows)

    # --- reading -------------------------------------------------------------------------------------

    async def find_by_head(self, head_hash: str, tenant: str) -> str | None:
        query = (
            sa.select(conversations.c.id)
            .where(conversations.c.head_hash == head_hash, conversations.c.tenant == tenant)
            .limit(1)
        )
        async with self._db.connection("finding a conversation") as connection:
            found: str | None = (await connection.execute(query)).scalar()
        return found

    async def find_completion(self, completion_id: str) -> str | None:
        query = sa.select(completions.c.conversation_id).where(completions.c.id == completion_id)
        async with self._db.connection("finding a completion") as connection:
            found: str | None = (await connection.execute(query)).scalar()
        return found

    async def get(self, conversation_id: str) -> Conversation | None:
        async with self._db.connection(f"reading conversation {conversation_id}") as connection:
            row = (
                (
                    await connection.execute(
                        conversations.select().where(conversations.c.id == conversation_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            message_rows = await connection.execute(
                messages.select()
                .where(messages.c.conversation_id == conversation_id)
                .order_by(messages.c.position)
            )
            history = tuple(rowmap.message_of(m) for m in message_rows.mappings())
            completion_rows = await connection.execute(
                completions.select()
                .where(completions.c.conversation_id == conversation_id)
                .order_by(completions.c.created_at, completions.c.id)
            )
            logged = tuple(rowmap.completion_of(c) for c in completion_rows.mappings())
            feedback_rows = await connection.execute(
                feedback.select()
                .where(feedback.c.conversation_id == conversation_id)
                .order_by(feedback.c.created_at, feedback.c.id)
            )
            notes = tuple(rowmap.feedback_of(f) for f in feedback_rows.mappings())
        return Conversation(
            summary=rowmap.summary_of(row),
            messages=history,
            completions=logged,
            feedback=notes,
            tools=rowmap.tool_list(row),
        )

    async def list(
        self, where: ConversationFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        query = conversations.select().where(*rowmap.conditions(where))
        if cursor is not None:
            updated_at, last_id = rowmap.decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    conversations.c.updated_at < updated_at,
                    sa.and_(conversations.c.updated_at == updated_at, conversations.c.id < last_id),
                )
            )
        query = query.order_by(conversations.c.updated_at.desc(), conversations.c.id.desc()).limit(limit + 1)
        async with self._db.connection("listing conversations") as connection:
            rows = (await connection.execute(query)).mappings().all()
        items = tuple(rowmap.summary_of(row) for row in rows[:limit])
        next_cursor = rowmap.encode_cursor(items[-1].updated_at, items[-1].id) if len(rows) > limit else None
        return ConversationPage(items=items, next_cursor=next_cursor)

    async def export(self, where: ConversationFilter | None = None) -> AsyncIterator[Conversation]:
        """Pages of ``page_size`` conversations (keyset on the update time), each page's messages in one
        query: memory stays bounded by the page, whatever the number of conversations."""
        conditions = rowmap.conditions(where)
        after: tuple[datetime, str] | None = None
        while True:
            query = conversations.select().where(*conditions)
            if after is not None:
                query = query.where(
                    sa.or_(
                        conversations.c.updated_at > after[0],
                        sa.and_(conversations.c.updated_at == after[0], conversations.c.id > after[1]),
                    )
                )
            query = query.order_by(conversations.c.updated_at, conversations.c.id).limit(self._page_size)
            async with self._db.connection("exporting conversations") as connection:
                rows = (await connection.execute(query)).mappings().all()
                if not rows:
                    return
                ids = [row["id"] for row in rows]
                message_rows = await connection.execute(
                    messages.select()
                    .where(rowmap.one_of(messages.c.conversation_id, ids))
                    .order_by(messages.c.conversation_id, messages.c.position)
                )
                grouped: dict[str, list[Message]] = {}
                for m in message_rows.mappings():
                    grouped.setdefault(m["conversation_id"], []).append(rowmap.message_of(m))
            for row in rows:
                yield Conversation(
                    summary=rowmap.summary_of(row),
                    messages=tuple(grouped.get(row["id"], ())),
                    tools=rowmap.tool_list(row),
                )
            if len(rows) < self._page_size:
                return
            after = (rows[-1]["updated_at"], rows[-1]["id"])

    # --- changing ------------------------------------------------------------------------------------

    async def delete(self, conversation_id: str) -> bool:
        async with self._db.transaction(f"deleting conversation {conversation_id}") as connection:
            result = await connection.execute(
                conversations.delete().where(conversations.c.id == conversation_id)
            )
        return bool(result.rowcount)

    async def add_feedback(self, note: Feedback) -> None:
        async with self._db.transaction(f"rating conversation {note.conversation_id}") as connection:
            exists = await connection.execute(
                sa.select(conversations.c.id).where(conversations.c.id == note.conversation_id)
            )
            if exists.scalar() is None:
                raise NotFound(f"No conversation with id '{note.conversation_id}'", param="conversation_id")
            if note.completion_id is not None:
                owned = await connection.execute(
                    sa.select(completions.c.id).where(
                        completions.c.id == note.completion_id,
                        completions.c.conversation_id == note.conversation_id,
                    )
                )
                if owned.scalar() is None:
                    raise NotFound(
                        f"No completion '{note.completion_id}' in conversation '{note.conversation_id}'",
                        param="completion_id",
                    )
            await connection.execute(
                feedback.insert().values(
                    id=note.id,
                    conversation_id=note.conversation_id,
                    completion_id=note.completion_id,
                    rating=note.rating,
                    comment=note.comment,
                    created_at=note.created_at,
                )
            )
            latest = (
                sa.select(feedback.c.rating)
                .where(feedback.c.conversation_id == note.conversation_id)
                .order_by(feedback.c.created_at.desc(), feedback.c.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            await connection.execute(
                conversations.update().where(conversations.c.id == note.conversation_id).values(rating=latest)
            )

    async def delete_before(self, cutoff: datetime) -> int:
        async with self._db.transaction("applying conversation retention") as connection:
            result = await connection.execute(
                conversations.delete().where(conversations.c.updated_at < cutoff)
            )
        return int(result.rowcount or 0)
