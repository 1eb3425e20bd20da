"""The FastAPI application: routers, error handlers, middleware, and the container's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI

import mindfu_core
from mindfu_adapters.container import Container, served_model_id
from mindfu_adapters.services import start, stop
from mindfu_adapters.settings import DEFAULT_MODEL_ID
from mindfu_core.application import Application
from mindfu_core.domain.principals import Scope
from mindfu_http import health
from mindfu_http.admin import routes as admin
from mindfu_http.anthropic import routes as anthropic
from mindfu_http.auth import authorized
from mindfu_http.conversations import routes as conversations
from mindfu_http.documents import routes as documents
from mindfu_http.errors import install_error_handlers
from mindfu_http.middleware import RequestContext
from mindfu_http.openai import chat, embeddings, models, responses, responses_stored
from mindfu_http.training import routes as training

log = logging.getLogger(__name__)


class Runtime(Protocol):
    """Starts the application the app serves, and stops it (in this process, or a remote core's client)."""

    async def start(self) -> Application: ...

    async def stop(self) -> None: ...


class InProcess:
    """The container's services in this process."""

    def __init__(self, container: Container) -> None:
        self._container = container

    async def start(self) -> Application:
        return await start(self._container)

    async def stop(self) -> None:
        await stop(self._container)


def create_app(container: Container, *, runtime: Runtime | None = None) -> FastAPI:
    """An app serving ``container``'s services (or ``runtime``'s application, with ``container`` giving
    the settings); they start and stop with the app's lifespan."""
    settings = container.settings()
    lifetime = runtime or InProcess(container)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.services = await lifetime.start()
        except BaseException:
            await lifetime.stop()
            raise
        try:
            yield
        finally:
            app.state.services = None
            await lifetime.stop()

    app = FastAPI(
        title="MindFu",
        version=mindfu_core.__version__,
        summary="Self-hosted LLM platform with an OpenAI-compatible API",
        lifespan=lifespan,
    )
    app.state.services = None
    app.state.runtime = lifetime
    app.state.training_experiment = settings.training.experiment
    app.state.default_model = served_model_id(settings) or DEFAULT_MODEL_ID
    app.state.anthropic_models = dict(settings.anthropic.model_map)
    install_error_handlers(app)
    generation = [authorized(Scope.CHAT)]
    app.include_router(health.router)
    app.include_router(chat.router, dependencies=generation)
    app.include_router(responses.router, dependencies=generation)
    app.include_router(responses_stored.router, dependencies=generation)
    app.include_router(anthropic.router, dependencies=generation)
    app.include_router(models.router, dependencies=generation)
    app.include_router(embeddings.router, dependencies=generation)
    app.include_router(documents.router)  # each route names its scope: reading or writing
    app.include_router(conversations.router, dependencies=[authorized(Scope.CONVERSATIONS_READ)])
    app.include_router(training.router, dependencies=[authorized(Scope.TRAINING)])
    app.include_router(admin.router)
    # uploads may be as large as the ingestion limit, plus the multipart or JSON envelope around them
    upload_limit = max(settings.http.max_body_bytes, settings.rag.max_upload_bytes + 1024 * 1024)
    app.add_middleware(
        RequestContext,
        max_body=settings.http.max_body_bytes,
        limits={
            **{path: upload_limit for path in documents.UPLOAD_PATHS},
            **{path: settings.training.max_file_bytes + 1024 * 1024 for path in training.UPLOAD_PATHS},
        },
    )
    return app
