"""Bearer API keys: when any are configured, every route but the health checks requires one."""

from __future__ import annotations

from fastapi import Request

from mindfu_core.services.auth import ApiKeys, presented_credentials

__all__ = ["ApiKeys", "require_api_key"]


async def require_api_key(request: Request) -> None:
    """FastAPI dependency for protected routers."""
    keys: ApiKeys = request.app.state.api_keys
    authorization = request.headers.get("authorization")
    keys.check(authorization)
    presented_credentials.set(authorization)  # a gateway presents the same key to its core
