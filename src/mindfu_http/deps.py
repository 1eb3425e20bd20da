"""What route handlers take from the app: the application the lifespan started (in-process or remote)."""

from __future__ import annotations

from fastapi import Request

from mindfu_core.application import (
    Application,
    ChatApi,
    ConversationApi,
    DocumentApi,
    EmbeddingApi,
    RetrievalApi,
)
from mindfu_core.errors import UpstreamUnavailable


def application(request: Request) -> Application:
    started: Application | None = request.app.state.services
    if started is None:
        raise UpstreamUnavailable("the server is starting or stopping")
    return started


def chat_service(request: Request) -> ChatApi:
    return application(request).chat


def ingestion_service(request: Request) -> DocumentApi:
    return application(request).documents


def retriever(request: Request) -> RetrievalApi:
    return application(request).retrieval


def embeddings(request: Request) -> EmbeddingApi:
    return application(request).embeddings


def conversation_service(request: Request) -> ConversationApi:
    return application(request).conversations
