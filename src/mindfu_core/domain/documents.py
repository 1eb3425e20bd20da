"""Document domain types: documents, their chunks, scored search hits and search filters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mindfu_core.domain.principals import DEFAULT_TENANT
from mindfu_core.errors import InvalidRequest

#: between a tenant and its collection's name in the name stores keep (never in a name a client gives)
TENANT_SEPARATOR = "\x1f"
MAX_COLLECTION_CHARS = 200


def check_collection(name: str, param: str = "collection") -> str:
    """``name`` if it can name a collection: 1 to 200 characters, no control characters."""
    if not name or len(name) > MAX_COLLECTION_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequest(
            f"a collection name is 1 to {MAX_COLLECTION_CHARS} characters without control characters",
            param=param,
        )
    return name


def stored_collection(tenant: str, collection: str) -> str:
    """The name stores keep a tenant's collection under: the default tenant's as it is (as before tenants),
    another's behind its tenant, so that no two tenants ever share a collection."""
    return collection if tenant == DEFAULT_TENANT else f"{tenant}{TENANT_SEPARATOR}{collection}"


def of_tenant(stored: str, tenant: str) -> bool:
    """Whether the stored collection name ``stored`` is ``tenant``'s."""
    if tenant == DEFAULT_TENANT:
        return TENANT_SEPARATOR not in stored
    return stored.startswith(stored_collection(tenant, ""))


def visible_collection(stored: str) -> str:
    """The collection's name as its tenant gave it."""
    return stored.rpartition(TENANT_SEPARATOR)[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """An ingested document as the registry records it."""

    id: str
    collection: str
    name: str
    sha256: str
    media_type: str
    size_bytes: int
    chunk_count: int
    embedding_model: str
    created_at: datetime
    title: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """The document an upload produced, or the one it duplicates (``duplicate`` true, nothing written)."""

    document: Document
    duplicate: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TextSpan:
    """A piece of a document's text: where it starts and ends in the source text, and its page."""

    start: int
    end: int
    text: str
    page: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SparseVector:
    """A sparse vector (lexical term weights): parallel ``indices`` (unique) and ``values``."""

    indices: tuple[int, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError("a sparse vector needs as many values as indices")


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """A stored piece of a document, with its embedding when it is written to or read from a store."""

    id: str
    document_id: str
    collection: str
    index: int
    text: str
    source: str = ""
    page: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    vector: tuple[float, ...] = ()
    sparse: SparseVector | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredChunk:
    """A search hit: the chunk and its cosine similarity to the query (1.0 is identical)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter:
    """Restricts a search to chunks whose fields equal the given values.

    ``document_ids`` keeps chunks of any of these documents; ``metadata`` entries must all match.
    """

    document_ids: tuple[str, ...] = ()
    metadata: Mapping[str, str | int | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkingPolicy:
    """Chunk size and overlap, in characters (the defaults are MindFu's: 512 and 50)."""

    size: int = 512
    overlap: int = 50

    def __post_init__(self) -> None:
        if self.size < 16:
            raise InvalidRequest(f"chunk size must be at least 16 characters, got {self.size}", param="chunk")
        if not 0 <= self.overlap < self.size // 2:
            raise InvalidRequest(
                f"chunk overlap must be between 0 and half the chunk size, got {self.overlap}", param="chunk"
            )
