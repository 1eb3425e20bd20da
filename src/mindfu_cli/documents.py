"""``mindfu ingest`` and ``mindfu documents list|show|delete``: in this process, or through a server.

In this process the data directory's stores are opened directly; Qdrant's local mode lets one process in
at a time, so while ``mindfu serve`` runs, pass ``--server URL`` to go through its HTTP API instead.
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
from typing import Any, Protocol

from mindfu_cli.remote import RemoteApi, RemoteError
from mindfu_core.domain.pages import offset_cursor
from mindfu_core.errors import MindFuError

#: Folders never walked into.
SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".mypy_cache"}


class Documents(Protocol):
    async def ingest(
        self, data: bytes, *, name: str, collection: str | None, metadata: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]: ...

    async def list(self, *, collection: str | None, limit: int, offset: int) -> list[dict[str, Any]]: ...

    async def get(self, document_id: str) -> dict[str, Any]: ...

    async def delete(self, document_id: str) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class LocalDocuments:
    """The ingestion service of this process's container (no LLM engine is loaded)."""

    def __init__(self) -> None:
        from mindfu_adapters.container import build_container

        self._container = build_container()
        self._service: Any = None

    async def _started(self) -> Any:
        if self._service is None:
            from mindfu_adapters.services import start_ingestion

            self._service = await start_ingestion(self._container)
        return self._service

    async def ingest(
        self, data: bytes, *, name: str, collection: str | None, metadata: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        from mindfu_http.documents.routes import document_object

        service = await self._started()
        result = await service.ingest(
            data,
            filename=name,
            collection=collection or self._container.settings().rag.collection,
            metadata=metadata,
        )
        return document_object(result.document), result.duplicate

    async def list(self, *, collection: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        from mindfu_http.documents.routes import document_object

        service = await self._started()
        cursor = offset_cursor(offset) if offset else None
        page = await service.list(collection=collection, limit=limit, cursor=cursor)
        return [document_object(d) for d in page.items]

    async def get(self, document_id: str) -> dict[str, Any]:
        from mindfu_http.documents.routes import document_object

        return document_object(await (await self._started()).get(document_id))

    async def delete(self, document_id: str) -> dict[str, Any]:
        from mindfu_http.documents.routes import document_object

        return document_object(await (await self._started()).delete(document_id))

    async def aclose(self) -> None:
        from mindfu_adapters.services import stop

        await stop(self._container)


class RemoteDocuments(RemoteApi):
    """A running MindFu server's documents API (``--server``)."""

    async def ingest(
        self, data: bytes, *, name: str, collection: str | None, metadata: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        form = {"metadata": json.dumps(metadata)}
        if collection:
            form["collection"] = collection
        body = await self._call("POST", "/v1/documents/upload", files={"file": (name, data)}, data=form)
        return body, bool(body.get("duplicate"))

    async def list(self, *, collection: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if collection:
            params["collection"] = collection
        data: list[dict[str, Any]] = (await self._call("GET", "/v1/documents", params=params))["data"]
        return data

    async def get(self, document_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/documents/{document_id}")

    async def delete(self, document_id: str) -> dict[str, Any]:
        document = await self.get(document_id)
        await self._call("DELETE", f"/v1/documents/{document_id}")
        return document


def _client(server: str | None) -> Documents:
    if server:
        return RemoteDocuments(server, os.environ.get("MINDFU_API_KEY"))
    return LocalDocuments()


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
    files: list[Path], client: Documents, collection: str | None, metadata: dict[str, Any], quiet: bool
) -> Summary:
    from tqdm import tqdm

    summary = Summary()
    with tqdm(total=len(files), unit="file", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar:
        for path in files:
            bar.set_postfix_str(path.name[-40:], refresh=False)
            try:
                data = await asyncio.to_thread(path.read_bytes)
                document, duplicate = await client.ingest(
                    data, name=path.name, collection=collection, metadata={**metadata, "path": str(path)}
                )
            except (MindFuError, RemoteError, OSError) as exc:
                summary.failed.append((str(path), getattr(exc, "message", None) or str(exc)))
            else:
                label = f"{path} -> {document['id']} ({document['chunk_count']} chunks)"
                (summary.duplicates if duplicate else summary.added).append(label)
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
        client = _client(server)
        try:
            return await _ingest(files, client, collection, extra, quiet)
        finally:
            await client.aclose()

    try:
        summary = asyncio.run(run())
    except (MindFuError, RemoteError) as exc:
        print(f"mindfu: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
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
    async def run() -> Any:
        client = _client(server)
        try:
            if action == "list":
                return await client.list(collection=collection, limit=limit, offset=offset)
            assert document_id is not None
            if action == "show":
                return await client.get(document_id)
            return await client.delete(document_id)
        finally:
            await client.aclose()

    try:
        result = asyncio.run(run())
    except (MindFuError, RemoteError) as exc:
        print(f"mindfu: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    if as_json or action == "show":
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif action == "list":
        print(f"{'ID':<36}  {'COLLECTION':<12} {'CHUNKS':>6}  NAME")
        for doc in result:
            print(f"{doc['id']:<36}  {doc['collection'][:12]:<12} {doc['chunk_count']:>6}  {doc['name']}")
    else:
        print(f"deleted {result['id']} ({result['name']}, {result['chunk_count']} chunks)")
    return 0
