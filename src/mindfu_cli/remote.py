"""The HTTP client of the CLI's ``--server`` mode: one running MindFu server, errors as ``RemoteError``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any


class RemoteError(Exception):
    """The server could not be reached, or answered with an error (its message is this one's)."""


class RemoteApi:
    """A running MindFu server's API (``--server URL``); the key comes from ``MINDFU_API_KEY``."""

    def __init__(self, url: str, api_key: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=600)

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self._http.base_url}: {exc}") from exc
        raise_for_error(response.status_code, response.content)
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    async def _lines(self, path: str, **kwargs: Any) -> AsyncIterator[str]:
        """A streamed response's non-blank lines."""
        import httpx

        try:
            async with self._http.stream("GET", path, **kwargs) as response:
                if response.status_code >= 400:
                    raise_for_error(response.status_code, await response.aread())
                async for line in response.aiter_lines():
                    if line.strip():
                        yield line
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self._http.base_url}: {exc}") from exc

    async def aclose(self) -> None:
        await self._http.aclose()


def raise_for_error(status: int, content: bytes) -> None:
    """``RemoteError`` with the OpenAI error object's message for an error status."""
    if status < 400:
        return
    try:
        error = json.loads(content).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    raise RemoteError(str(error.get("message") or f"HTTP {status}"))
