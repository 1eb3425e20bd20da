"""The response bodies of MindFu's own routes as typed wire models: ``/openapi.json`` documents them, and
FastAPI checks every answer against them (an undeclared key is an error, never silently dropped)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

STRICT = ConfigDict(extra="forbid")


# --- models --------------------------------------------------------------------------------------------


@with_config(STRICT)
class ModelExtension(TypedDict):
    context_length: int
    engine: str
    source: str
    supports_tools: bool
    supports_logprobs: bool


@with_config(STRICT)
class ModelObject(TypedDict):
    """OpenAI's model object, with Anthropic's fields beside it, and MindFu's under ``mindfu``."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    type: Literal["model"]
    display_name: str
    created_at: str
    mindfu: ModelExtension


@with_config(STRICT)
class ModelList(TypedDict):
    object: Literal["list"]
    data: list[ModelObject]
    has_more: bool
    first_id: str | None
    last_id: str | None


# --- documents and retrieval ------------------------------------------------------------------------------


@with_config(STRICT)
class DocumentObject(TypedDict):
    id: str
    object: Literal["document"]
    collection: str
    name: str
    title: str | None
    media_type: str
    size_bytes: int
    chunk_count: int
    sha256: str
    embedding_model: str
    metadata: dict[str, Any]
    created_at: int


@with_config(STRICT)
class DocumentIngested(DocumentObject):
    """A new document (201), or the one an upload duplicates (200, ``duplicate`` true)."""

    duplicate: bool


@with_config(STRICT)
class DocumentList(TypedDict):
    object: Literal["list"]
    data: list[DocumentObject]
    has_more: bool
    next_cursor: str | None
    limit: int
    offset: int


@with_config(STRICT)
class DocumentDeleted(TypedDict):
    id: str
    object: Literal["document.deleted"]
    deleted: bool
    document: DocumentObject


@with_config(STRICT)
class FilterObject(TypedDict):
    document_ids: list[str]
    metadata: dict[str, str | int | bool]


@with_config(STRICT)
class RagObject(TypedDict):
    """Retrieval options, in the shape of the ``mindfu.rag`` request extension."""

    enabled: bool
    top_k: int
    min_score: float | None
    collection: str
    hybrid: bool
    filter: FilterObject | None


@with_config(STRICT)
class ChunkingObject(TypedDict):
    size: int
    overlap: int


@with_config(STRICT)
class DocumentDefaults(TypedDict):
    object: Literal["documents.defaults"]
    chunking: ChunkingObject
    rag: RagObject


@with_config(STRICT)
class ChunkHit(TypedDict):
    object: Literal["chunk"]
    id: str
    document_id: str
    name: str
    page: int | None
    chunk_index: int
    score: float
    text: str
    metadata: dict[str, Any]


@with_config(STRICT)
class ChunkList(TypedDict):
    object: Literal["list"]
    collection: str
    data: list[ChunkHit]


# --- conversations ----------------------------------------------------------------------------------------


@with_config(STRICT)
class ConversationSummaryObject(TypedDict):
    id: str
    object: Literal["conversation"]
    created_at: int
    updated_at: int
    model: str
    title: str
    message_count: int
    completion_count: int
    last_status: str
    rating: int | None
    user: str | None


@with_config(STRICT)
class ConversationList(TypedDict):
    object: Literal["list"]
    data: list[ConversationSummaryObject]
    has_more: bool
    next_cursor: str | None


@with_config(STRICT)
class FeedbackObject(TypedDict):
    id: str
    object: Literal["conversation.feedback"]
    conversation_id: str
    rating: int
    comment: str | None
    completion_id: str | None
    created: int


@with_config(STRICT)
class LoggedChoice(TypedDict):
    index: int
    message: dict[str, Any]
    finish_reason: str | None


@with_config(STRICT)
class RetrievedObject(TypedDict):
    document_id: str
    chunk_index: int
    score: float


@with_config(STRICT)
class CompletionObject(TypedDict):
    id: str
    object: Literal["conversation.completion"]
    created: int
    model: str
    message_count: int
    choices: list[LoggedChoice]
    parameters: dict[str, Any]
    usage: dict[str, Any]
    latency_ms: float
    ttft_ms: float | None
    retrieved: list[RetrievedObject]
    status: str
    error: str | None
    user: str | None


@with_config(STRICT)
class ConversationObject(ConversationSummaryObject):
    """A conversation: its messages in OpenAI's chat format, its completions, feedback and tools."""

    messages: list[dict[str, Any]]
    completions: list[CompletionObject]
    feedback: list[FeedbackObject]
    tools: list[dict[str, Any]]


@with_config(STRICT)
class ConversationDeleted(TypedDict):
    id: str
    object: Literal["conversation.deleted"]
    deleted: bool


# --- fine-tuning ------------------------------------------------------------------------------------------


@with_config(STRICT)
class FileObject(TypedDict):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int | None
    filename: str
    purpose: str
    status: str
    status_details: str | None
    mindfu: dict[str, Any]


@with_config(STRICT)
class FileList(TypedDict):
    object: Literal["list"]
    data: list[FileObject]
    has_more: bool
    next_cursor: str | None


@with_config(STRICT)
class FileDeleted(TypedDict):
    id: str
    object: Literal["file"]
    deleted: bool
    file: FileObject


@with_config(STRICT)
class JobObject(TypedDict):
    """OpenAI's fine-tuning job; MindFu's progress, dataset, evaluation, recipe and artifacts under
    ``mindfu``."""

    id: str
    object: Literal["fine_tuning.job"]
    model: str
    created_at: int | None
    finished_at: int | None
    fine_tuned_model: str | None
    organization_id: str
    result_files: list[str]
    status: str
    validation_file: str | None
    training_file: str | None
    hyperparameters: dict[str, Any]
    method: dict[str, Any]
    trained_tokens: int | None
    error: dict[str, Any] | None
    seed: int
    user_provided_suffix: str | None
    estimated_finish: int | None
    integrations: list[Any]
    mindfu: dict[str, Any]


@with_config(STRICT)
class JobList(TypedDict):
    object: Literal["list"]
    data: list[JobObject]
    has_more: bool
    next_cursor: str | None


@with_config(STRICT)
class EventObject(TypedDict):
    id: str
    object: Literal["fine_tuning.job.event"]
    created_at: int | None
    level: str
    message: str
    data: dict[str, Any]
    type: str


@with_config(STRICT)
class EventList(TypedDict):
    object: Literal["list"]
    data: list[EventObject]
    has_more: bool
    next_cursor: str | None


@with_config(STRICT)
class CheckpointObject(TypedDict):
    id: str
    object: Literal["fine_tuning.job.checkpoint"]
    created_at: int | None
    fine_tuning_job_id: str
    fine_tuned_model_checkpoint: str
    step_number: int
    metrics: dict[str, Any]
    mindfu: dict[str, Any]


@with_config(STRICT)
class CheckpointList(TypedDict):
    object: Literal["list"]
    data: list[CheckpointObject]
    has_more: bool


# --- chat ------------------------------------------------------------------------------------------------


@with_config(STRICT)
class TokenCount(TypedDict):
    object: Literal["chat.completion.count_tokens"]
    input_tokens: int
