"""What route handlers take from the app: the services the lifespan started."""

from __future__ import annotations

from fastapi import Request

from mindfu_adapters.container import Services
from mindfu_core.errors import UpstreamUnavailable
from mindfu_core.ports.embedder import Embedder
from mindfu_core.services.chat import ChatService
from mindfu_core.services.conversations import ConversationService
from mindfu_core.services.ingestion import IngestionService
from mindfu_core.services.retrieval import Retriever


def services(request: Request) -> Services:
    started: Services | None = request.app.state.services
    if started is None:
        raise UpstreamUnavailable("the server is starting or stopping")
    return started


def chat_service(request: Request) -> ChatService:
    return services(request).chat


def ingestion_service(request: Request) -> IngestionService:
    return services(request).ingestion


def retriever(request: Request) -> Retriever:
    return services(request).retriever


def embedder(request: Request) -> Embedder:
    return services(request).embedder


def conversation_service(request: Request) -> ConversationService:
    return services(request).conversations
