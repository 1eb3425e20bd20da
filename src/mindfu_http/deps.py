"""What route handlers take from the app: the services the lifespan started."""

from __future__ import annotations

from fastapi import Request

from mindfu_core.services.chat import ChatService


def chat_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat_service
    return service
