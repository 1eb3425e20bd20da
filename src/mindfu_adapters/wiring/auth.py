"""Keys: the server's secret (which keys are stored under) and the key service over the database."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from mindfu_adapters.settings import Settings
from mindfu_core.errors import ConfigurationError
from mindfu_core.services.auth import KeyService

if TYPE_CHECKING:
    from mindfu_adapters.store.sql import Database


def secret_file(settings: Settings) -> Path:
    return (settings.auth.secret_file or settings.data_dir / "server.secret").expanduser()


def server_secret(settings: Settings) -> bytes:
    """``MINDFU_AUTH__SECRET``, else the secret file (made once, readable by its owner only): every process
    that shares the database (a core, ``mindfu keys``) must use the same one."""
    if settings.auth.secret is not None:
        found = settings.auth.secret.get_secret_value().encode("utf-8")
    else:
        path = secret_file(settings)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                pass
            else:
                with os.fdopen(descriptor, "w", encoding="ascii") as out:
                    out.write(secrets.token_hex(32) + "\n")
        found = path.read_text(encoding="ascii").strip().encode("ascii")
    if len(found) < 16:
        raise ConfigurationError("the server secret needs at least 16 characters (MINDFU_AUTH__SECRET)")
    return found


def key_service(settings: Settings, database: Database) -> KeyService:
    from mindfu_adapters.store.keys import SqlKeyStore

    return KeyService(
        SqlKeyStore(database),
        secret=server_secret(settings),
        bootstrap=settings.all_api_keys(),
        cache_s=settings.auth.cache_s,
    )
