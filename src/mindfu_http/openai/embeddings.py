"""POST /v1/embeddings (OpenAI-compatible): string or list input, float or base64 vectors, usage."""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from mindfu_core.errors import InvalidRequest
from mindfu_http.deps import embeddings

router = APIRouter(prefix="/v1", tags=["openai"])


class EmbeddingIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str] | list[int] | list[list[int]]
    model: str
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


def _texts(value: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    if isinstance(value, str):
        return [value]
    if all(isinstance(item, str) for item in value):
        return [str(item) for item in value]
    raise InvalidRequest("token-id input is not supported; send text", param="input")


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


@router.post("/embeddings", summary="Create embeddings (OpenAI-compatible)")
async def create_embeddings(body: EmbeddingIn, request: Request) -> dict[str, Any]:
    found = await embeddings(request).embed(body.model, _texts(body.input), dimensions=body.dimensions)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": _encode(list(vector), body.encoding_format)}
            for index, vector in enumerate(found.vectors)
        ],
        "model": found.model,
        "usage": {"prompt_tokens": found.prompt_tokens, "total_tokens": found.prompt_tokens},
    }
