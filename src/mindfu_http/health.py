"""GET /health (liveness) and GET /health/ready (the application can serve), open without an API key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mindfu_core.application import Application

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: every engine is loaded (or the core answers)")
async def ready(request: Request) -> JSONResponse:
    application: Application | None = request.app.state.services
    if application is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    found = await application.health()
    body: dict[str, Any] = {"status": "ready" if found.ready else "not_ready", **found.detail}
    return JSONResponse(body, status_code=200 if found.ready else 503)
