"""Bearer API keys: when any are configured, every route but the health checks requires one."""

from __future__ import annotations

from fastapi import Request

from mindfu_core.services.auth import ApiKeys, presented_credentials

__all__ = ["ApiKeys", "credentials", "require_api_key"]


def credentials(request: Request) -> str | None:
    """The presented key as ``Bearer <key>``: the Authorization header, or ``x-api-key`` (Anthropic's)."""
    authorization = request.headers.get("authorization")
    if not authorization and (key := request.headers.get("x-api-key")):
        return f"Bearer {key}"
    return authorization


async def require_api_key(request: Request) -> None:
    """FastAPI dependency for protected routers."""
    keys: ApiKeys = request.app.state.api_keys
    authorization = credentials(request)
    keys.check(authorization)
    presented_credentials.set(authorization)  # a gateway presents the same key to its core
