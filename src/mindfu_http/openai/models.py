"""GET /v1/models and GET /v1/models/{id}, in a shape both the OpenAI and the Anthropic SDKs read."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mindfu_http.auth import tenant_of
from mindfu_http.deps import chat_service
from mindfu_http.openai.wire import model_object
from mindfu_http.responses import ModelList, ModelObject

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", summary="List the served models")
async def list_models(request: Request) -> ModelList:
    models = [
        model_object(info)
        for info in await chat_service(request).list_models(tenant=await tenant_of(request))
    ]
    return {
        "object": "list",
        "data": models,
        # Anthropic's list envelope
        "has_more": False,
        "first_id": models[0]["id"] if models else None,
        "last_id": models[-1]["id"] if models else None,
    }


@router.get("/models/{model_id:path}", summary="Describe one served model")
async def get_model(model_id: str, request: Request) -> ModelObject:
    return model_object(await chat_service(request).get_model(model_id, tenant=await tenant_of(request)))
