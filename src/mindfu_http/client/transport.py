"""The HTTP connection of ``HttpApplication``: credentials per call, and every OpenAI error object turned
back into the domain error the server raised."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from mindfu_core.errors import (
    ALL_ERRORS,
    Conflict,
    InvalidRequest,
    MindFuError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    UnprocessableContent,
    UnsupportedMediaType,
    UpstreamUnavailable,
)
from mindfu_core.services.auth import presented_credentials

#: HTTP status -> the error class the server's table (``mindfu_http.errors.HTTP_ERRORS``) answers with it.
BY_STATUS: dict[int, type[MindFuError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: UnprocessableContent,
    429: Overloaded,
    503: UpstreamUnavailable,
}
#: OpenAI error ``type`` -> the status the server answers it with (an error event in a stream has none).
STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "rate_limit_error": 429,
    "service_unavailable_error": 503,
}
#: Every class by its own ``code`` (codes are distinct): the code decides first, since one status serves
#: several classes (400, 413, 415 and 422 are all ``invalid_request_error``); the status is the fallback
#: for a code an error was raised with in place of its class's.
BY_CODE: dict[str, type[MindFuError]] = {cls.code: cls for cls in ALL_ERRORS}


def error_of(
    status: int, body: Any, headers: Mapping[str, str] | None = None, *, target: str = ""
) -> MindFuError:
    """The domain error an error response stands for: its class from the status (and the ``code`` where
    one status serves several), with the error object's message, ``param`` and ``code``."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    message = str(error.get("message") or f"{target or 'the server'} answered HTTP {status}")
    param = error.get("param") if isinstance(error.get("param"), str) else None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    retry = _retry_after(headers)
    cls = (
        BY_CODE.get(code or "") or BY_STATUS.get(status) or (MindFuError if status >= 500 else InvalidRequest)
    )
    if cls is Overloaded:
        return Overloaded(message, retry_after=retry if retry is not None else 1.0, code=code)
    if cls is UpstreamUnavailable:
        return UpstreamUnavailable(message, param=param, code=code, retry_after=retry)
    return cls(message, param=param, code=code)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Default:
    """The credentials a call presents when it names none: the caller's, else the client's own key."""


DEFAULT = Default()


class Transport:
    """One HTTP client for a MindFu server; each call presents the credentials of the request being served
    (as a gateway would) or the client's own key."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self._http = client or httpx.AsyncClient(base_url=self.url, timeout=timeout)

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        authorization = presented_credentials.get()
        if authorization is None and self._api_key:
            authorization = f"Bearer {self._api_key}"
        found = {"Authorization": authorization} if authorization else {}
        return {**found, **(extra or {})}

    async def call(
        self, method: str, path: str, *, presenting: str | Default | None = DEFAULT, **kwargs: Any
    ) -> httpx.Response:
        """The response to one request; an error status raises the domain error it stands for.

        ``presenting``: exactly these credentials (``None``: none) instead of the caller's or the client's.
        """
        if isinstance(presenting, Default):
            headers = self.headers(kwargs.pop("headers", None))
        else:
            headers = {"Authorization": presenting} if presenting else {}
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc
        if response.status_code >= 400:
            raise error_of(response.status_code, _json(response.content), response.headers, target=self.url)
        return response

    async def call_raw(self, method: str, path: str) -> httpx.Response:
        """The response whatever its status (health answers 503 with a body worth reading)."""
        return await self._http.request(method, path, headers=self.headers())

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of ``call``'s response."""
        return (await self.call(method, path, **kwargs)).json()

    @asynccontextmanager
    async def stream(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """A streamed response, its status checked before the body is read."""
        headers = self.headers(kwargs.pop("headers", None))
        try:
            async with self._http.stream(method, path, headers=headers, **kwargs) as response:
                if response.status_code >= 400:
                    content = await response.aread()
                    raise error_of(response.status_code, _json(content), response.headers, target=self.url)
                yield response
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: Exception) -> UpstreamUnavailable:
        return UpstreamUnavailable(f"cannot reach the MindFu server at {self.url}: {exc}", retry_after=1.0)

    async def aclose(self) -> None:
        await self._http.aclose()


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None
