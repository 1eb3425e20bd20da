"""GET /health (liveness) and GET /health/ready (every engine loaded), open without an API key."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mindfu_adapters.container import Services

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: every engine is loaded and accepting work")
async def ready(request: Request) -> JSONResponse:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    service = services.chat
    engines: list[dict[str, Any]] = [
        {"model": engine.model_info().id, **asdict(engine.stats())} for engine in service.engines()
    ]
    is_ready = all(entry["ready"] for entry in engines)
    body: dict[str, Any] = {"status": "ready" if is_ready else "not_ready", "engines": engines}
    stats = getattr(services.completion_log, "stats", None)
    if stats is not None:  # a slow or failing log never makes the server unready: chats do not wait for it
        body["conversation_log"] = asdict(stats())
    return JSONResponse(
        body,
        status_code=200 if is_ready else 503,
    )
