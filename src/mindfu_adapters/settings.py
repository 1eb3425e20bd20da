"""The one configuration model: environment ``MINDFU_...`` (nested with ``__``), then ``mindfu.toml``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mindfu_adapters.llm_settings import AnyLlmSettings as AnyLlmSettings
from mindfu_adapters.llm_settings import LlamaCppSettings as LlamaCppSettings
from mindfu_adapters.llm_settings import LlmSettings as LlmSettings
from mindfu_adapters.llm_settings import UpstreamSettings as UpstreamSettings
from mindfu_adapters.llm_settings import VllmSettings as VllmSettings
from mindfu_adapters.llm_settings import llm_settings as llm_settings
from mindfu_core.domain.limits import RequestLimits

DEFAULT_MODEL_ID = "smollm2-135m-instruct"


def default_data_dir() -> Path:
    """Where MindFu keeps its state unless ``MINDFU_DATA_DIR`` says otherwise."""
    return platformdirs.user_data_path("mindfu", appauthor=False)


class HttpSettings(BaseModel):
    """The OpenAI-compatible HTTP facade (``MINDFU_HTTP__...``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=11434, ge=0, le=65535)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_n: int = Field(default=8, ge=1, description="Largest n a request may ask for.")


class LimitsSettings(BaseModel):
    """``MINDFU_LIMITS__...``: what one generation request may cost, on every API (refused with 400)."""

    max_messages: int = Field(default=4096, ge=1, description="Messages in one request.")
    max_message_chars: int = Field(default=1 << 20, ge=1, description="Characters in one message.")
    max_prompt_chars: int = Field(
        default=4 << 20, ge=1, description="Characters of all messages together (or of a text prompt)."
    )
    max_tools: int = Field(default=128, ge=0, description="Tools in one request.")
    max_tool_schema_depth: int = Field(default=32, ge=1, description="How deep a tool's schema nests.")
    max_stop: int = Field(default=4, ge=0, description="Stop sequences in one request.")
    max_stop_chars: int = Field(default=256, ge=1, description="Characters in one stop sequence.")
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Tokens of one answer: the length of answers whose request names none, and a larger "
        "max_tokens is lowered to it (llama-server's --n-predict); unset: what the context window leaves.",
    )
    key_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Requests one API key may have in flight (429 beyond; unset: no bound).",
    )
    key_tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Prompt and completion tokens one API key may use a minute (429 with the wait beyond).",
    )


class AuthSettings(BaseModel):
    """``MINDFU_AUTH__...``: how stored keys are kept (the settings' own keys are ``MINDFU_API_KEYS``)."""

    secret: SecretStr | None = Field(
        default=None,
        description="The secret keys are stored under (HMAC-SHA256); unset: a random one made once in "
        "secret_file. Every process sharing the database needs the same one.",
    )
    secret_file: Path | None = Field(default=None, description="Default <data_dir>/server.secret.")
    cache_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a looked-up key is trusted (a revoke elsewhere takes this long).",
    )


class GrpcSettings(BaseModel):
    """The gRPC services (``MINDFU_GRPC__...``): served next to HTTP, or alone by a core."""

    enabled: bool = Field(default=True, description="Serve gRPC next to HTTP in `mindfu serve`.")
    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    max_message_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest message received or sent; a larger one is RESOURCE_EXHAUSTED (uploads stream "
        "in chunks, so documents may be larger).",
    )


class CoreSettings(BaseModel):
    """Where a gateway finds its core (``MINDFU_CORE__...``)."""

    address: str | None = Field(default=None, description="host:port of the core's gRPC server.")
    api_key: SecretStr | None = Field(
        default=None, description="The key the gateway presents when a client request brings none."
    )
    timeout_s: float = Field(default=600.0, gt=0, description="Deadline of a call to the core.")
    connect_timeout_s: float = Field(default=30.0, gt=0, description="How long start-up waits for the core.")


class DatabaseSettings(BaseModel):
    """The SQL database of the document registry and conversation store (``MINDFU_DATABASE__...``)."""

    url: str | None = Field(
        default=None,
        description="sqlite:///path or postgresql://user@host/db; unset means SQLite in the data directory.",
    )
    auto_migrate: bool | None = Field(
        default=None,
        description="Upgrade the schema at start-up. Unset: SQLite upgrades itself, and an out-of-date "
        "PostgreSQL schema stops start-up until `mindfu db upgrade` is run.",
    )
    pool_size: int = Field(default=5, ge=1)
    echo: bool = False


class EmbeddingSettings(BaseModel):
    """The embedding model (``MINDFU_EMBEDDING__...``)."""

    backend: Literal["fastembed", "sentence_transformers"] = "fastembed"
    model_dir: Path | None = Field(
        default=None,
        description="A local model folder; unset means all-MiniLM-L6-v2 as `mindfu models prepare` wrote it.",
    )
    model_name: str = "sentence-transformers/all-MiniLM-L6-v2"
    batch_size: int = Field(default=64, ge=1)
    threads: int | None = Field(default=None, ge=1)


class VectorStoreSettings(BaseModel):
    """Where chunks and their vectors live (``MINDFU_VECTOR_STORE__...``)."""

    backend: Literal["qdrant", "pgvector", "memory"] = "qdrant"
    path: Path | None = Field(
        default=None, description="Qdrant local mode folder; unset means <data_dir>/qdrant."
    )
    url: str | None = Field(default=None, description="A Qdrant server URL (instead of local mode).")
    api_key: SecretStr | None = None
    in_memory: bool = Field(default=False, description="Qdrant's :memory: mode (nothing kept).")
    dsn: str | None = Field(default=None, description="pgvector: a PostgreSQL URL with the vector extension.")
    name: str | None = Field(
        default=None,
        description="The physical Qdrant collection / pgvector table; unset means one per embedding model.",
    )


class RagSettings(BaseModel):
    """Ingestion and retrieval defaults (``MINDFU_RAG__...``); requests may override retrieval."""

    enabled: bool = Field(default=True, description="Ground chat requests in the default collection.")
    collection: str = "default"
    top_k: int = Field(default=4, ge=1, le=50)
    min_score: float | None = Field(default=0.25, ge=-1.0, le=1.0)
    hybrid: bool = Field(
        default=True,
        description="Fuse dense and BM25 rankings (SciFact nDCG@10 0.714 vs 0.677); requests may choose.",
    )
    sparse_index: bool = Field(
        default=True, description="Store BM25 term weights with every chunk, so hybrid retrieval is possible."
    )
    bm25_language: str = Field(default="english", description="Snowball stemmer and stop-word language.")
    chunk_size: int = Field(default=512, ge=16)
    chunk_overlap: int = Field(default=50, ge=0)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)


class ConversationSettings(BaseModel):
    """Conversation logging (``MINDFU_CONVERSATIONS__...``): a durable local queue drained into the
    database."""

    enabled: bool = Field(default=True, description="Log every chat completion.")
    spool_dir: Path | None = Field(
        default=None,
        description="The durable queue and the dead-letter file; default <data_dir>/conversations.",
    )
    batch_size: int = Field(default=500, ge=1, description="Completions written per database transaction.")
    linger_s: float = Field(
        default=1.0,
        ge=0,
        description="How long the writer lets a part batch fill before writing it (one write a second, "
        "not one per chat).",
    )
    idle_wait_s: float = Field(default=0.5, gt=0, description="How long the writer sleeps when idle.")
    retry_initial_s: float = Field(default=0.5, gt=0, description="First wait after a failed write.")
    retry_max_s: float = Field(default=30.0, gt=0, description="Longest wait between retries.")
    lookup_timeout_ms: float = Field(
        default=50.0, ge=0, description="Longest a chat waits to find the conversation it continues."
    )
    shutdown_flush_s: float = Field(
        default=10.0, ge=0, description="How long shutdown drains the queue; the rest waits on disk."
    )
    retention_days: int | None = Field(
        default=None, ge=1, description="Delete conversations not updated for this many days."
    )
    retention_interval_s: float = Field(default=3600.0, gt=0, description="How often retention runs.")


class TrainingSettings(BaseModel):
    """Fine-tuning (``MINDFU_TRAINING__...``): job folders, which models can be tuned, MLflow."""

    enabled: bool = Field(default=True, description="Serve the fine-tuning API and run queued jobs.")
    dir: Path | None = Field(default=None, description="Job folders; default <data_dir>/training.")
    base_models: dict[str, Path] = Field(
        default_factory=dict,
        description="Served model id -> a Hugging Face model folder with its trainable weights "
        '(JSON in the environment: {"devstral-small-2": "/models/Devstral-Small-2"}).',
    )
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default SQLite at <data_dir>/mlflow.db."
    )
    experiment: str = "mindfu-finetune"
    max_file_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    cancel_grace_s: float = Field(
        default=300.0, gt=0, description="How long a cancelled job may take to stop."
    )
    merge: bool = Field(default=True, description="Merge the adapter into the base model after training.")
    merge_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        default="auto",
        description="Precision of the merged model: auto keeps the base weights' own (bf16 stays bf16, "
        "~48 GB for a 24B model); float32 doubles the size.",
    )
    export_gguf: str | None = Field(
        default="q8_0",
        description="Export the merged model as GGUF of this type (f16, bf16, q8_0) so llama.cpp serves it "
        "under the job's fine_tuned_model name; empty: no export.",
    )
    export_lora_gguf: bool = Field(
        default=True,
        description="Also convert the adapter to a LoRA GGUF; a llama.cpp engine serving the base model then "
        "serves the tuned model as that adapter (no second copy of the weights) instead of the merged GGUF.",
    )
    export_awq: bool = Field(
        default=False,
        description="Also quantize the merged model with AWQ (W4A16) for vLLM, with llm-compressor.",
    )
    awq_python: str | None = Field(
        default=None,
        description="The Python interpreter that quantizes (an environment with llm-compressor, which cannot "
        "share one with vLLM: `make awq-env` builds .venv-awq); default: MindFu's own.",
    )
    awq_device: Literal["cuda", "cpu"] = Field(
        default="cuda",
        description="Where AWQ runs: a CUDA GPU, or the CPU (slow; for small models and tests).",
    )


class AnthropicSettings(BaseModel):
    """The Anthropic Messages API (``MINDFU_ANTHROPIC__...``), for Claude Code and the anthropic SDKs."""

    model_map: dict[str, str] = Field(
        default_factory=lambda: {"claude-*": ""},
        description="Model names clients send (glob patterns, first match wins) -> a served model id; an "
        'empty id means the default model. JSON in the environment: {"claude-*": "devstral-small-2"}. '
        "Names that match no pattern are used as they are.",
    )


class Settings(BaseSettings):
    """Everything MindFu can be told; one instance is built at start-up and handed to the container."""

    model_config = SettingsConfigDict(
        env_prefix="MINDFU_",
        env_nested_delimiter="__",
        extra="ignore",
        toml_file=os.environ.get("MINDFU_CONFIG_FILE", "mindfu.toml"),
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Bearer keys; comma-separated in MINDFU_API_KEYS."
    )
    api_keys_file: Path | None = Field(default=None, description="A file with one API key per line.")
    log_level: str = "INFO"
    llm: LlmSettings = Field(default_factory=LlamaCppSettings)
    models: list[LlmSettings] = Field(
        default_factory=list,
        description="More models served beside llm, each with its own engine settings and a model_id "
        '(JSON in MINDFU_MODELS: [{"model_id": "coder", "model_path": "/models/coder.gguf"}]).',
    )
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)
    core: CoreSettings = Field(default_factory=CoreSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    vector_store: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    anthropic: AnthropicSettings = Field(default_factory=AnthropicSettings)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls), file_secret_settings)

    def database_url(self) -> str:
        """The configured database, or SQLite at ``<data_dir>/mindfu.db``."""
        return self.database.url or f"sqlite:///{self.data_dir.expanduser() / 'mindfu.db'}"

    def spool_dir(self) -> Path:
        """Where the conversation log's queue and dead letters live."""
        return (self.conversations.spool_dir or self.data_dir / "conversations").expanduser()

    def training_dir(self) -> Path:
        """Where training jobs keep their datasets, checkpoints and models."""
        return (self.training.dir or self.data_dir / "training").expanduser()

    def tracking_uri(self) -> str:
        """The MLflow tracking store."""
        return self.training.tracking_uri or f"sqlite:///{self.data_dir.expanduser() / 'mlflow.db'}"

    def request_limits(self) -> RequestLimits:
        """What one generation request may cost."""
        per_key = {"key_concurrency", "key_tokens_per_minute"}
        return RequestLimits(max_n=self.http.max_n, **self.limits.model_dump(exclude=per_key))

    def all_api_keys(self) -> list[str]:
        """Configured keys from the setting and the keys file (blank lines and ``#`` comments skipped)."""
        keys = [key.get_secret_value() for key in self.api_keys]
        if self.api_keys_file is not None:
            for line in self.api_keys_file.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        return keys
