"""GET /v1/models and GET /v1/models/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mindfu_http.deps import chat_service
from mindfu_http.openai.wire import model_object

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", summary="List the served models")
async def list_models(request: Request) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [model_object(info) for info in await chat_service(request).list_models()],
    }


@router.get("/models/{model_id:path}", summary="Describe one served model")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    return model_object(await chat_service(request).get_model(model_id))
