"""MindFu's domain core: types, ports and use cases, in pure Python (standard library only)."""

from mindfu_core.domain.chat import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    EngineStats,
    FinishReason,
    GenerationRequest,
    Message,
    ModelInfo,
    ResponseFormat,
    ResponseFormatType,
    Role,
    SamplingParams,
    TextRequest,
    TokenLogprob,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolSpec,
    TopLogprob,
    Usage,
)
from mindfu_core.domain.documents import Chunk, Document, Filter, IngestResult, ScoredChunk, TextSpan
from mindfu_core.domain.parsing import ParsedDocument
from mindfu_core.errors import (
    ConfigurationError,
    Conflict,
    ContextLengthExceeded,
    EngineFailure,
    InvalidRequest,
    MindFuError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    UnprocessableContent,
    UnsupportedMediaType,
    UpstreamUnavailable,
)
from mindfu_core.ports.document_registry import DocumentRegistry
from mindfu_core.ports.embedder import Embedder
from mindfu_core.ports.llm import LLMEngine
from mindfu_core.ports.parser import DocumentParser
from mindfu_core.ports.vector_store import VectorStore
from mindfu_core.services.chat import ChatService
from mindfu_core.services.chunking import ChunkingPolicy, split_pages, split_text
from mindfu_core.services.collect import collect
from mindfu_core.services.ingestion import IngestionLimits, IngestionService

__version__ = "0.1.0"

__all__ = [
    "ChatDelta",
    "ChatRequest",
    "ChatResult",
    "ChatService",
    "Choice",
    "Chunk",
    "ChunkingPolicy",
    "ConfigurationError",
    "Conflict",
    "ContextLengthExceeded",
    "Document",
    "DocumentParser",
    "DocumentRegistry",
    "Embedder",
    "EngineFailure",
    "EngineStats",
    "Filter",
    "FinishReason",
    "GenerationRequest",
    "IngestResult",
    "IngestionLimits",
    "IngestionService",
    "InvalidRequest",
    "LLMEngine",
    "Message",
    "MindFuError",
    "ModelInfo",
    "NotFound",
    "Overloaded",
    "ParsedDocument",
    "PayloadTooLarge",
    "PermissionDenied",
    "ResponseFormat",
    "ResponseFormatType",
    "Role",
    "SamplingParams",
    "ScoredChunk",
    "TextRequest",
    "TextSpan",
    "TokenLogprob",
    "ToolCall",
    "ToolChoice",
    "ToolChoiceMode",
    "ToolSpec",
    "TopLogprob",
    "Unauthenticated",
    "UnprocessableContent",
    "UnsupportedMediaType",
    "UpstreamUnavailable",
    "Usage",
    "VectorStore",
    "__version__",
    "collect",
    "split_pages",
    "split_text",
]
