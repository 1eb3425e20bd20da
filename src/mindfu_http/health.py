"""GET /health (liveness) and GET /health/ready (the application can serve), open without an API key; the
text of errors behind a not-ready state (a database's, a core's) only for a key with the admin or metrics
scope."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mindfu_core.application import Application
from mindfu_core.domain.principals import Scope
from mindfu_core.errors import MindFuError
from mindfu_http.auth import caller

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
    detail = dict(found.detail)
    if not await _may_see_errors(request):
        detail = _without_error_text(detail)
    body: dict[str, Any] = {"status": "ready" if found.ready else "not_ready", **detail}
    return JSONResponse(body, status_code=200 if found.ready else 503)


async def _may_see_errors(request: Request) -> bool:
    try:
        principal = await caller(request)
    except MindFuError:  # no key, a wrong one, or a core that cannot say: the open view
        return False
    return principal.allows(Scope.METRICS)


#: keys of the health detail whose values are error text (they may name hosts, paths, SQL)
ERROR_TEXT = frozenset({"last_error", "error"})


def _without_error_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_error_text(item) for key, item in value.items() if key not in ERROR_TEXT}
    if isinstance(value, list):
        return [_without_error_text(item) for item in value]
    return value
