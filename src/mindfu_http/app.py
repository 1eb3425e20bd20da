"""The FastAPI application: routers, error handlers, middleware, and the container's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

import mindfu_core
from mindfu_adapters.container import Container, start, stop
from mindfu_http import health
from mindfu_http.auth import ApiKeys, require_api_key
from mindfu_http.conversations import routes as conversations
from mindfu_http.documents import routes as documents
from mindfu_http.errors import install_error_handlers
from mindfu_http.middleware import RequestContext
from mindfu_http.openai import chat, embeddings, models

log = logging.getLogger(__name__)


def create_app(container: Container) -> FastAPI:
    """An app serving ``container``'s services; resources start and stop with the app's lifespan."""
    settings = container.settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.services = await start(container)
        except BaseException:
            await stop(container)
            raise
        try:
            yield
        finally:
            app.state.services = None
            await stop(container)

    app = FastAPI(
        title="MindFu",
        version=mindfu_core.__version__,
        summary="Self-hosted LLM platform with an OpenAI-compatible API",
        lifespan=lifespan,
    )
    app.state.api_keys = ApiKeys(settings.all_api_keys())
    app.state.services = None
    install_error_handlers(app)
    protected = [Depends(require_api_key)]
    app.include_router(health.router)
    app.include_router(chat.router, dependencies=protected)
    app.include_router(models.router, dependencies=protected)
    app.include_router(embeddings.router, dependencies=protected)
    app.include_router(documents.router, dependencies=protected)
    app.include_router(conversations.router, dependencies=protected)
    # uploads may be as large as the ingestion limit, plus the multipart or JSON envelope around them
    upload_limit = max(settings.http.max_body_bytes, settings.rag.max_upload_bytes + 1024 * 1024)
    app.add_middleware(
        RequestContext,
        max_body=settings.http.max_body_bytes,
        limits={path: upload_limit for path in documents.UPLOAD_PATHS},
    )
    return app
