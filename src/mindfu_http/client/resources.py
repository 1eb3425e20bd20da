"""Documents, retrieval, embeddings, conversations and training over MindFu's REST routes (parts of
``HttpApplication``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from mindfu_core.domain.conversations import Conversation, ConversationFilter, ConversationPage, Feedback
from mindfu_core.domain.documents import ChunkingPolicy, Document, IngestResult, ScoredChunk
from mindfu_core.domain.embeddings import Embeddings
from mindfu_core.domain.pages import Page
from mindfu_core.domain.principals import DEFAULT_TENANT
from mindfu_core.domain.retrieval import NO_OVERRIDES, RetrievalOptions, RetrievalOverrides
from mindfu_core.domain.training import Checkpoint, JobEvent, JobSpec, TrainingFile, TrainingJob
from mindfu_http.client import parse, parse_training
from mindfu_http.client.requests import filter_params, job_body, rag_body
from mindfu_http.client.transport import Transport


class Defaults:
    """The server's retrieval options and chunking policy (``GET /v1/documents/defaults``), read once."""

    def __init__(self, retrieval: RetrievalOptions, policy: ChunkingPolicy) -> None:
        self.retrieval = retrieval
        self.policy = policy


def _page(found: Mapping[str, Any], items: tuple[Any, ...]) -> Page[Any]:
    return Page(items=items, next_cursor=found.get("next_cursor") or None)


def _chunking(policy: ChunkingPolicy | None, chunk: bool) -> Any:
    if not chunk:
        return False
    if policy is None:
        return True
    return {"size": policy.size, "overlap": policy.overlap}


class HttpDocuments:
    """``DocumentApi`` over ``/v1/documents``: files go up as multipart uploads, text as JSON."""

    def __init__(self, transport: Transport, defaults: Defaults) -> None:
        self._http = transport
        self._defaults = defaults

    @property
    def policy(self) -> ChunkingPolicy:
        return self._defaults.policy

    async def ingest(
        self,
        data: bytes,
        *,
        filename: str,
        collection: str = "default",
        metadata: Mapping[str, Any] | None = None,
        policy: ChunkingPolicy | None = None,
        chunk: bool = True,
        tenant: str = DEFAULT_TENANT,
    ) -> IngestResult:
        form: dict[str, str] = {"collection": collection, "chunk": "true" if chunk else "false"}
        if metadata:
            form["metadata"] = json.dumps(dict(metadata))
        if policy is not None:
            form.update(chunk_size=str(policy.size), chunk_overlap=str(policy.overlap))
        found = await self._http.json(
            "POST", "/v1/documents/upload", files={"file": (filename, data)}, data=form
        )
        return IngestResult(document=parse.document_of(found), duplicate=bool(found.get("duplicate")))

    async def ingest_text(
        self,
        content: str,
        *,
        name: str,
        collection: str = "default",
        metadata: Mapping[str, Any] | None = None,
        policy: ChunkingPolicy | None = None,
        chunk: bool = True,
        tenant: str = DEFAULT_TENANT,
    ) -> IngestResult:
        body = {
            "content": content,
            "name": name,
            "collection": collection,
            "metadata": dict(metadata or {}),
            "chunk": _chunking(policy, chunk),
        }
        found = await self._http.json("POST", "/v1/documents", json=body)
        return IngestResult(document=parse.document_of(found), duplicate=bool(found.get("duplicate")))

    async def get(self, document_id: str, *, tenant: str = DEFAULT_TENANT) -> Document:
        return parse.document_of(await self._http.json("GET", f"/v1/documents/{document_id}"))

    async def list(
        self,
        *,
        collection: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> Page[Document]:
        params: dict[str, Any] = {"limit": limit}
        if collection is not None:
            params["collection"] = collection
        if cursor:
            params["after"] = cursor
        found = await self._http.json("GET", "/v1/documents", params=params)
        return _page(found, tuple(parse.document_of(d) for d in found["data"]))

    async def delete(self, document_id: str, *, tenant: str = DEFAULT_TENANT) -> Document:
        found = await self._http.json("DELETE", f"/v1/documents/{document_id}")
        return parse.document_of(found["document"])


class HttpRetrieval:
    """``RetrievalApi`` over ``POST /v1/retrieve``."""

    def __init__(self, transport: Transport, defaults: Defaults) -> None:
        self._http = transport
        self._defaults = defaults

    @property
    def defaults(self) -> RetrievalOptions:
        return self._defaults.retrieval

    def options(self, overrides: RetrievalOverrides = NO_OVERRIDES) -> RetrievalOptions:
        """The server's defaults with ``overrides`` applied (the server validates them when they arrive)."""
        return overrides.apply(self.defaults)

    async def search(
        self, query: str, options: RetrievalOptions, *, tenant: str = DEFAULT_TENANT
    ) -> list[ScoredChunk]:
        rag = rag_body(options)
        if rag is False:
            return []
        assert isinstance(rag, dict)
        found = await self._http.json("POST", "/v1/retrieve", json={**rag, "query": query})
        return [parse.hit_of(h, found["collection"]) for h in found["data"]]


class HttpEmbeddings:
    """``EmbeddingApi`` over ``POST /v1/embeddings``."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    async def embed(self, model: str, texts: Sequence[str], *, dimensions: int | None = None) -> Embeddings:
        body: dict[str, Any] = {"model": model, "input": list(texts), "encoding_format": "float"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        found = await self._http.json("POST", "/v1/embeddings", json=body)
        ordered = sorted(found["data"], key=lambda e: e["index"])
        return Embeddings(
            model=found["model"],
            vectors=tuple(tuple(float(x) for x in e["embedding"]) for e in ordered),
            prompt_tokens=int((found.get("usage") or {}).get("prompt_tokens", 0)),
        )


class HttpConversations:
    """``ConversationApi`` over ``/v1/conversations``; the export streams NDJSON."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    async def list(
        self, where: ConversationFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        params = {**filter_params(where), "limit": limit}
        if cursor:
            params["after"] = cursor
        found = await self._http.json("GET", "/v1/conversations", params=params)
        return _page(found, tuple(parse.summary_of(s) for s in found["data"]))

    async def get(self, conversation_id: str, *, tenant: str | None = None) -> Conversation:
        return parse.conversation_of(await self._http.json("GET", f"/v1/conversations/{conversation_id}"))

    async def of_completion(self, completion_id: str, *, tenant: str | None = None) -> Conversation:
        found = await self._http.json("GET", f"/v1/conversations/completions/{completion_id}")
        return parse.conversation_of(found)

    async def delete(self, conversation_id: str, *, tenant: str | None = None) -> None:
        await self._http.call("DELETE", f"/v1/conversations/{conversation_id}")

    async def add_feedback(
        self,
        conversation_id: str,
        *,
        rating: int,
        comment: str | None = None,
        completion_id: str | None = None,
        tenant: str | None = None,
    ) -> Feedback:
        body = {"rating": rating, "comment": comment, "completion_id": completion_id}
        found = await self._http.json("POST", f"/v1/conversations/{conversation_id}/feedback", json=body)
        return parse.feedback_of(found)

    async def export(self, where: ConversationFilter | None = None) -> AsyncIterator[Conversation]:
        async for line in self._export(where, "conversations"):
            yield parse.conversation_of(line)

    async def export_examples(self, where: ConversationFilter | None = None) -> AsyncIterator[dict[str, Any]]:
        async for line in self._export(where, "finetune"):
            yield line

    async def _export(self, where: ConversationFilter | None, form: str) -> AsyncIterator[dict[str, Any]]:
        params = {**filter_params(where), "format": form}
        async with self._http.stream("GET", "/v1/conversations/export", params=params) as response:
            async for line in response.aiter_lines():
                if line.strip():
                    found: dict[str, Any] = json.loads(line)
                    yield found


class HttpTraining:
    """``TrainingApi`` over ``/v1/files`` and ``/v1/fine_tuning/jobs``."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    async def upload_file(
        self, data: bytes, *, filename: str, purpose: str = "fine-tune", tenant: str | None = None
    ) -> TrainingFile:
        found = await self._http.json(
            "POST", "/v1/files", files={"file": (filename, data)}, data={"purpose": purpose}
        )
        return parse_training.file_of(found)

    async def get_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        return parse_training.file_of(await self._http.json("GET", f"/v1/files/{file_id}"))

    async def list_files(
        self, *, limit: int = 100, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingFile]:
        found = await self._http.json("GET", "/v1/files", params=_listing(limit, cursor))
        return _page(found, tuple(parse_training.file_of(f) for f in found["data"]))

    async def delete_file(self, file_id: str, *, tenant: str | None = None) -> TrainingFile:
        return parse_training.file_of((await self._http.json("DELETE", f"/v1/files/{file_id}"))["file"])

    async def create_job(self, spec: JobSpec, *, tenant: str | None = None) -> TrainingJob:
        return parse_training.job_of(
            await self._http.json("POST", "/v1/fine_tuning/jobs", json=job_body(spec))
        )

    async def get_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        return parse_training.job_of(await self._http.json("GET", f"/v1/fine_tuning/jobs/{job_id}"))

    async def list_jobs(
        self, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[TrainingJob]:
        found = await self._http.json("GET", "/v1/fine_tuning/jobs", params=_listing(limit, cursor))
        return _page(found, tuple(parse_training.job_of(j) for j in found["data"]))

    async def events(
        self, job_id: str, *, limit: int = 20, cursor: str | None = None, tenant: str | None = None
    ) -> Page[JobEvent]:
        path = f"/v1/fine_tuning/jobs/{job_id}/events"
        found = await self._http.json("GET", path, params=_listing(limit, cursor))
        return _page(found, tuple(parse_training.event_of(e, job_id) for e in found["data"]))

    async def checkpoints(self, job_id: str, *, tenant: str | None = None) -> list[Checkpoint]:
        found = await self._http.json("GET", f"/v1/fine_tuning/jobs/{job_id}/checkpoints")
        return [parse_training.checkpoint_of(c) for c in found["data"]]

    async def cancel_job(self, job_id: str, *, tenant: str | None = None) -> TrainingJob:
        return parse_training.job_of(await self._http.json("POST", f"/v1/fine_tuning/jobs/{job_id}/cancel"))


def _listing(limit: int, cursor: str | None) -> dict[str, Any]:
    return {"limit": limit, "after": cursor} if cursor else {"limit": limit}


__all__ = [
    "Defaults",
    "HttpConversations",
    "HttpDocuments",
    "HttpEmbeddings",
    "HttpRetrieval",
    "HttpTraining",
]
