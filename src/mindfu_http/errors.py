"""One table from domain errors to OpenAI error objects, and the app's only exception handlers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mindfu_core.errors import (
    ConfigurationError,
    Conflict,
    ContextLengthExceeded,
    EngineFailure,
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

log = logging.getLogger(__name__)

#: domain error -> (HTTP status, OpenAI error ``type``); looked up along the exception's MRO.
HTTP_ERRORS: dict[type[MindFuError], tuple[int, str]] = {
    InvalidRequest: (400, "invalid_request_error"),
    ContextLengthExceeded: (400, "invalid_request_error"),
    PayloadTooLarge: (413, "invalid_request_error"),
    UnsupportedMediaType: (415, "invalid_request_error"),
    UnprocessableContent: (422, "invalid_request_error"),
    Unauthenticated: (401, "authentication_error"),
    PermissionDenied: (403, "permission_error"),
    NotFound: (404, "not_found_error"),
    Conflict: (409, "conflict_error"),
    Overloaded: (429, "rate_limit_error"),
    UpstreamUnavailable: (503, "service_unavailable_error"),
    EngineFailure: (500, "server_error"),
    ConfigurationError: (500, "server_error"),
    MindFuError: (500, "server_error"),
}

INTERNAL_MESSAGE = "The server had an error while processing your request (request id {request_id})."


def error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An OpenAI error object."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


#: Routes of the Anthropic Messages API answer errors in Anthropic's shape.
ANTHROPIC_PREFIX = "/v1/messages"
#: HTTP status -> (Anthropic status, Anthropic error type). A busy or unreachable engine is
#: ``overloaded_error`` (529), which Anthropic clients retry.
ANTHROPIC_ERRORS: dict[int, tuple[int, str]] = {
    400: (400, "invalid_request_error"),
    401: (401, "authentication_error"),
    403: (403, "permission_error"),
    404: (404, "not_found_error"),
    409: (409, "invalid_request_error"),
    413: (413, "request_too_large"),
    415: (415, "invalid_request_error"),
    422: (422, "invalid_request_error"),
    429: (529, "overloaded_error"),
    503: (529, "overloaded_error"),
}


def anthropic_error(status: int, message: str, request_id: str) -> tuple[int, dict[str, Any]]:
    """The Anthropic error object (and status) for an error MindFu answers with ``status``."""
    status, type_ = ANTHROPIC_ERRORS.get(status, (status if status >= 500 else 400, "api_error"))
    if status < 500 and type_ == "api_error":
        type_ = "invalid_request_error"
    return status, {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}


def _shaped(
    request: Request, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """``body`` (an OpenAI error object) as the route's API expects it."""
    if request.url.path.startswith(ANTHROPIC_PREFIX):
        status, body = anthropic_error(status, body["error"]["message"], request_id_of(request))
    return JSONResponse(body, status_code=status, headers=headers)


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "unknown")


def domain_error_payload(exc: MindFuError, request_id: str) -> tuple[int, dict[str, Any]]:
    """Status and OpenAI error object for ``exc``; server-side messages are hidden behind the request id."""
    status, type_ = next(HTTP_ERRORS[cls] for cls in type(exc).__mro__ if cls in HTTP_ERRORS)
    if status >= 500 and status != 503:
        log.error("request %s failed: %r", request_id, exc, exc_info=exc)
        return status, error_body(INTERNAL_MESSAGE.format(request_id=request_id), type_, code=exc.code)
    return status, error_body(exc.message, type_, param=exc.param, code=exc.code)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "Invalid request.", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "We could not parse the JSON body of your request: " + str(first.get("msg", "")), None
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid value"))
    return (f"Invalid value for '{param}': {message}" if param else message), param


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves the app as an OpenAI error object."""

    @app.exception_handler(MindFuError)
    async def _domain(request: Request, exc: MindFuError) -> JSONResponse:
        status, body = domain_error_payload(exc, request_id_of(request))
        retry_after = exc.retry_after if isinstance(exc, (Overloaded, UpstreamUnavailable)) else None
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
        return _shaped(request, status, body, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return _shaped(request, 400, error_body(message, "invalid_request_error", param=param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = (
            f"Unknown route {request.method} {request.url.path}"
            if exc.status_code == 404
            else str(exc.detail)
        )
        return _shaped(request, exc.status_code, error_body(message, type_), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = request_id_of(request)
        log.error("request %s failed with an unexpected error", request_id, exc_info=exc)
        body = error_body(INTERNAL_MESSAGE.format(request_id=request_id), "server_error")
        # this handler runs outside the request-id middleware, so it sets the header itself
        return _shaped(request, 500, body, {"X-Request-Id": request_id})
