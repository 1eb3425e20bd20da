"""``mindfu ingest`` and ``mindfu documents list|show|delete``: in this process, or through a server.

In this process the data directory's stores are opened directly; Qdrant's local mode lets one process in
at a time, so while ``mindfu serve`` runs, pass ``--server URL`` to go through its HTTP or gRPC API instead.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindfu_cli.connect import application
from mindfu_core.application import Application
from mindfu_core.domain.documents import Document
from mindfu_core.domain.pages import offset_cursor
from mindfu_core.errors import MindFuError

#: Folders never walked into.
SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".mypy_cache"}


def find_files(paths: Sequence[str], include: Sequence[str], exclude: Sequence[str]) -> Iterator[Path]:
    """Files under ``paths`` (folders recursively, sorted), kept if they match an ``include`` glob (when
    any are given) and no ``exclude`` glob; globs match the file name or its path."""

    def wanted(path: Path) -> bool:
        text = path.as_posix()

        def matches(pattern: str) -> bool:
            return fnmatch.fnmatch(path.name, pattern) or fnmatch.fnmatch(text, pattern)

        return (not include or any(map(matches, include))) and not any(map(matches, exclude))

    for raw in paths:
        root = Path(raw)
        if root.is_file():
            if wanted(root):
                yield root
        elif root.is_dir():
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
                for name in sorted(files):
                    path = Path(folder) / name
                    if not name.startswith(".") and wanted(path):
                        yield path
        else:
            raise FileNotFoundError(raw)


@dataclass
class Summary:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


async def _ingest(
    files: list[Path], app: Application, collection: str | None, metadata: dict[str, Any], quiet: bool
) -> Summary:
    from tqdm import tqdm

    summary = Summary()
    target = collection or app.retrieval.defaults.collection
    with tqdm(total=len(files), unit="file", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar:
        for path in files:
            bar.set_postfix_str(path.name[-40:], refresh=False)
            try:
                data = await asyncio.to_thread(path.read_bytes)
                result = await app.documents.ingest(
                    data, filename=path.name, collection=target, metadata={**metadata, "path": str(path)}
                )
            except (MindFuError, OSError) as exc:
                summary.failed.append((str(path), exc.message if isinstance(exc, MindFuError) else str(exc)))
            else:
                document = result.document
                label = f"{path} -> {document.id} ({document.chunk_count} chunks)"
                (summary.duplicates if result.duplicate else summary.added).append(label)
            bar.update(1)
    return summary


def ingest(
    *,
    paths: Sequence[str],
    collection: str | None,
    include: Sequence[str],
    exclude: Sequence[str],
    metadata: str | None,
    server: str | None,
    quiet: bool,
) -> int:
    try:
        extra = json.loads(metadata) if metadata else {}
        if not isinstance(extra, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        print(f"mindfu: --metadata must be a JSON object ({exc})", file=sys.stderr)
        return 2
    try:
        files = list(find_files(paths, include, exclude))
    except FileNotFoundError as exc:
        print(f"mindfu: no such file or folder: {exc}", file=sys.stderr)
        return 2

    async def run() -> Summary:
        async with application(server) as app:
            return await _ingest(files, app, collection, extra, quiet)

    try:
        summary = asyncio.run(run())
    except MindFuError as exc:
        print(f"mindfu: {exc.message if isinstance(exc, MindFuError) else exc}", file=sys.stderr)
        return 2
    for label in summary.added:
        print(f"added      {label}")
    for label in summary.duplicates:
        print(f"duplicate  {label}")
    for name, reason in summary.failed:
        print(f"failed     {name}: {reason}")
    print(
        f"{len(summary.added)} added, {len(summary.duplicates)} duplicate, {len(summary.failed)} failed "
        f"({len(files)} files)"
    )
    return 1 if summary.failed else 0


def documents(
    *,
    action: str,
    document_id: str | None,
    collection: str | None,
    limit: int,
    offset: int,
    server: str | None,
    as_json: bool,
) -> int:
    async def run() -> Document | list[Document]:
        async with application(server) as app:
            if action == "list":
                cursor = offset_cursor(offset) if offset else None
                page = await app.documents.list(collection=collection, limit=limit, cursor=cursor)
                return list(page.items)
            assert document_id is not None
            if action == "show":
                return await app.documents.get(document_id)
            return await app.documents.delete(document_id)

    try:
        result = asyncio.run(run())
    except MindFuError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 1
    from mindfu_http.documents.routes import document_object  # the API's JSON shape for --json

    if isinstance(result, list):
        if as_json:
            print(_json([document_object(d) for d in result]))
        else:
            print(f"{'ID':<36}  {'COLLECTION':<12} {'CHUNKS':>6}  NAME")
            for doc in result:
                print(f"{doc.id:<36}  {doc.collection[:12]:<12} {doc.chunk_count:>6}  {doc.name}")
    elif as_json or action == "show":
        print(_json(document_object(result)))
    else:
        print(f"deleted {result.id} ({result.name}, {result.chunk_count} chunks)")
    return 0


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
