"""``mindfu keys create|list|revoke``: API keys, in this data directory's database (the operator's own
files: every tenant, no key needed) or through a server (``--server``, as the admin key in
``MINDFU_API_KEY``)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mindfu_cli.connect import application
from mindfu_core.domain.principals import ALL_SCOPES, DEFAULT_TENANT, ApiKey, Principal
from mindfu_core.errors import MindFuError

#: who runs the command on the server's own files; through a server, the server knows the caller instead
OPERATOR = Principal(key_id=None, tenant=DEFAULT_TENANT, scopes=ALL_SCOPES)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "tenant": key.tenant,
        "scopes": sorted(key.scopes),
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "created_by": key.created_by,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


async def _run(action: str, options: Mapping[str, Any]) -> int:
    as_json = bool(options.get("json"))
    async with application(options.get("server")) as app:
        if action == "create":
            made = await app.keys.create(
                OPERATOR, tenant=options["tenant"], scopes=options["scope"], name=options.get("name")
            )
            if as_json:
                print(json.dumps({**key_json(made.key), "key": made.secret}))
            else:
                scopes = ",".join(sorted(made.key.scopes))
                print(f"created {made.key.id} for tenant {made.key.tenant} ({scopes}); it is shown only now:")
                print(made.secret)
            return 0
        if action == "list":
            keys = await app.keys.list(OPERATOR, tenant=options.get("tenant"))
            if as_json:
                print(json.dumps([key_json(key) for key in keys]))
                return 0
            print(f"{'ID':<21} {'TENANT':<16} {'PREFIX':<11} {'CREATED':<16} {'REVOKED':<16} SCOPES")
            for key in keys:
                print(
                    f"{key.id:<21} {key.tenant:<16} {key.prefix:<11} {_when(key.created_at):<16} "
                    f"{_when(key.revoked_at):<16} {','.join(sorted(key.scopes))}"
                )
            return 0
        revoked = await app.keys.revoke(OPERATOR, options["key_id"])
        print(
            json.dumps(key_json(revoked))
            if as_json
            else f"revoked {revoked.id} at {_when(revoked.revoked_at)}"
        )
        return 0


def keys(action: str, options: Mapping[str, Any]) -> int:
    try:
        return asyncio.run(_run(action, options))
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 2
