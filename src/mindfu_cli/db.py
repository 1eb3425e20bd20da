"""``mindfu db upgrade|downgrade|current|history``: the schema of the configured database, through alembic."""

from __future__ import annotations

import asyncio
import sys

from mindfu_core.errors import MindFuError


def db(*, action: str, revision: str | None) -> int:
    from mindfu_adapters.settings import Settings
    from mindfu_adapters.store.sql import Database

    async def run() -> str | None:
        database = Database(Settings().database_url())
        try:
            if action == "upgrade":
                await database.migrate(revision or "head")
            elif action == "downgrade":
                await database.downgrade(revision or "-1")
            current = await database.current_revision()
            if action == "history":
                for name, _, message in await database.history():
                    marker = "  <- current" if name == current else ""
                    print(f"{name}  {message.splitlines()[0] if message else ''}{marker}")
            print(f"{database.safe_url}: at revision {current or '(empty)'}")
            return current
        finally:
            await database.aclose()

    try:
        asyncio.run(run())
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 1
    return 0
