"""What ``LlamaCppEngine`` is built from and checks: its configuration, the GGUF check, the chat template
used when a GGUF has none, and the GBNF grammars that constrain its output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mindfu_adapters.llm.planning import Constraint, ConstraintKind
from mindfu_adapters.llm.tool_format import CALL_CLOSE, CALL_OPEN
from mindfu_core.errors import ConfigurationError, InvalidRequest

GGUF_MAGIC = b"GGUF"

# Used when a GGUF carries no chat template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LlamaCppConfig:
    """What the engine needs; the container fills it from settings."""

    model_path: Path
    model_id: str
    setting_name: str = "MINDFU_LLM__MODEL_PATH"
    context_length: int = 4096
    slots: int = 1
    max_queue: int = 16
    threads: int | None = None
    batch_size: int = 512
    logprobs: bool = False
    chat_template: str | None = None
    temperature: float = 1.0  # for requests that leave it unset
    top_p: float = 1.0
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    # a max_tokens beyond what the window leaves after the prompt is lowered to fit (agents ask for more
    # than small windows hold); False refuses such requests, as OpenAI and vLLM do
    clamp_max_tokens: bool = True
    # prefixes evicted from slots are kept in host memory up to this many bytes and restored instead of
    # recomputed (0: none kept)
    prompt_cache_bytes: int = 0
    # served name -> a LoRA GGUF of this model, applied per request to requests naming it
    adapters: Mapping[str, Path] = field(default_factory=dict)
    # llama.cpp's own parameters: {"model": {llama_model_params field: value}, "context": {...}}
    extra: dict[str, Any] = field(default_factory=dict)


def check_gguf(path: Path, setting_name: str) -> None:
    """Fail with a message naming the path and the setting unless ``path`` is a readable GGUF file."""
    if not path.is_file():
        raise ConfigurationError(
            f"model file {str(path)!r} does not exist (set {setting_name} to a GGUF file)"
        )
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ConfigurationError(
            f"model file {str(path)!r} cannot be read ({exc}); check {setting_name}"
        ) from exc
    if magic != GGUF_MAGIC:
        raise ConfigurationError(f"model file {str(path)!r} is not a GGUF file (check {setting_name})")


@lru_cache(maxsize=128)
def _grammar_text(schema_json: str, wrap_call: bool) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        gbnf = json_schema_to_gbnf(schema_json)
    except Exception as exc:  # the converter raises plain exceptions for schemas it cannot express
        raise InvalidRequest(f"unsupported JSON schema: {exc}", param="response_format") from exc
    if not wrap_call:
        return str(gbnf)
    renamed = str(gbnf).replace("root ::=", "call-body ::=", 1)
    return f'root ::= "{CALL_OPEN}" call-body "{CALL_CLOSE}"\n{renamed}'


def grammar_of(constraint: Constraint) -> str:
    """The GBNF grammar of a constraint."""
    if constraint.kind is ConstraintKind.CALL:
        # key order kept: the grammar writes "name" before "arguments", so the call streams
        return _grammar_text(json.dumps(constraint.schema), True)
    if constraint.kind is ConstraintKind.JSON_OBJECT:
        return _grammar_text(json.dumps({"type": "object"}), False)
    return _grammar_text(json.dumps(constraint.schema, sort_keys=True), False)
