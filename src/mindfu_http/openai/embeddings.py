"""POST /v1/embeddings (OpenAI-compatible): string or list input, float or base64 vectors, usage."""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from mindfu_core.errors import InvalidRequest, NotFound
from mindfu_http.deps import embedder

router = APIRouter(prefix="/v1", tags=["openai"])

#: Inputs per request, as OpenAI allows.
MAX_INPUTS = 2048


class EmbeddingIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str] | list[int] | list[list[int]]
    model: str
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


def _texts(value: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    if isinstance(value, str):
        texts = [value]
    elif all(isinstance(item, str) for item in value):
        texts = [str(item) for item in value]
    else:
        raise InvalidRequest("token-id input is not supported; send text", param="input")
    if not texts:
        raise InvalidRequest("input must not be empty", param="input")
    if len(texts) > MAX_INPUTS:
        raise InvalidRequest(f"at most {MAX_INPUTS} inputs per request", param="input")
    for position, text in enumerate(texts):
        if not text:
            raise InvalidRequest(f"input[{position}] is an empty string", param="input")
    return texts


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


@router.post("/embeddings", summary="Create embeddings (OpenAI-compatible)")
async def create_embeddings(body: EmbeddingIn, request: Request) -> dict[str, Any]:
    model = embedder(request)
    if body.model not in (model.model_id, f"sentence-transformers/{model.model_id}"):
        raise NotFound(
            f"The embedding model '{body.model}' does not exist; this server embeds with '{model.model_id}'",
            param="model",
            code="model_not_found",
        )
    if body.dimensions is not None and body.dimensions != model.dimension:
        raise InvalidRequest(
            f"{model.model_id} has {model.dimension} dimensions and cannot shorten them", param="dimensions"
        )
    texts = _texts(body.input)
    vectors = await model.embed(texts)
    tokens = await model.count_tokens(texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": _encode(vector, body.encoding_format)}
            for index, vector in enumerate(vectors)
        ],
        "model": model.model_id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
