"""One table from domain errors to gRPC status codes, the server interceptor that applies it (with API-key
authentication and request ids), and the client's way back from a status to the domain error.

Statuses carry ``google.rpc`` details in ``grpc-status-details-bin``: ``ErrorInfo`` (reason: the error's
code; metadata: its class and the field), ``BadRequest`` naming the field, and ``RetryInfo`` when a retry
can help. Clients in any language read them with their gRPC status library.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

import grpc
from mindfu_core.domain.principals import Principal
from mindfu_core.errors import (
    ALL_ERRORS,
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
from mindfu_grpc.auth import scope_of, set_caller

log = logging.getLogger(__name__)
if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]

#: domain error -> status code; looked up along the exception's MRO.
GRPC_CODES: dict[type[MindFuError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ContextLengthExceeded: grpc.StatusCode.INVALID_ARGUMENT,
    UnsupportedMediaType: grpc.StatusCode.INVALID_ARGUMENT,
    UnprocessableContent: grpc.StatusCode.INVALID_ARGUMENT,
    # gRPC's own answer to a message over the size limit; a too-large upload is the same condition
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.ALREADY_EXISTS,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UpstreamUnavailable: grpc.StatusCode.UNAVAILABLE,
    EngineFailure: grpc.StatusCode.INTERNAL,
    ConfigurationError: grpc.StatusCode.INTERNAL,
    MindFuError: grpc.StatusCode.INTERNAL,
}

DETAILS_KEY = "grpc-status-details-bin"
REQUEST_ID_KEY = "x-request-id"
ERROR_DOMAIN = "mindfu"
INTERNAL_MESSAGE = "The server had an error while processing your request (request id {request_id})."
#: Services open without an API key (load balancers and tools probe them).
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def code_for(error: MindFuError) -> grpc.StatusCode:
    return next(GRPC_CODES[cls] for cls in type(error).__mro__ if cls in GRPC_CODES)


def _retry_after(error: MindFuError) -> float | None:
    value = error.retry_after if isinstance(error, Overloaded | UpstreamUnavailable) else None
    return float(value) if value is not None else None


def status_of(error: MindFuError, request_id: str) -> tuple[grpc.StatusCode, str, bytes]:
    """Code, message and serialized ``google.rpc.Status`` for ``error``; internals hidden behind the id."""
    code = code_for(error)
    message = error.message
    if code is grpc.StatusCode.INTERNAL:
        log.error("request %s failed: %r", request_id, error, exc_info=error)
        message = INTERNAL_MESSAGE.format(request_id=request_id)
    info = error_details_pb2.ErrorInfo(
        reason=error.code,
        domain=ERROR_DOMAIN,
        metadata={"error": type(error).__name__, "request_id": request_id},
    )
    if error.param:
        info.metadata["param"] = error.param
    details: list[Message] = [info]
    if error.param and code is grpc.StatusCode.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.param, description=error.message)
        details.append(error_details_pb2.BadRequest(field_violations=[violation]))
    retry_after = _retry_after(error)
    if retry_after is not None:
        delay = Duration()
        delay.FromMilliseconds(max(1, int(retry_after * 1000)))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return code, message, status.SerializeToString()


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: BaseException, request_id: str) -> None:
    if not isinstance(error, MindFuError):
        log.error("request %s failed with an unexpected error", request_id, exc_info=error)
        error = MindFuError("unexpected error")
    code, message, details = status_of(error, request_id)
    await context.abort(
        code, message, trailing_metadata=((DETAILS_KEY, details), (REQUEST_ID_KEY, request_id))
    )


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


def authorization_of(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The ``authorization`` metadata (``Bearer <key>``), or an ``x-api-key`` as a bearer token."""
    found = metadata_value(context, "authorization")
    if found is None and (key := metadata_value(context, "x-api-key")):
        found = f"Bearer {key}"
    return found


Authenticate = Callable[[str | None], Awaitable[Principal]]


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Every call gets a request id; calls to MindFu's services are authenticated by ``authenticate`` (an
    API key when the server takes keys) and need their method's scope; domain errors become statuses (the
    table above), anything else INTERNAL without its details."""

    def __init__(self, authenticate: Authenticate) -> None:
        self._authenticate = authenticate

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        if details.method.startswith(OPEN_SERVICES):
            return _wrap(handler, None)
        authenticate, scope = self._authenticate, scope_of(details.method)

        async def authorize(context: grpc.aio.ServicerContext[Any, Any]) -> None:
            principal = await authenticate(authorization_of(context))
            if scope is not None:
                principal.require(scope)
            set_caller(principal)

        return _wrap(handler, authorize)


Authorize = Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]


def _wrap(handler: Handler, authorize: Authorize | None) -> Handler:
    async def prologue(context: grpc.aio.ServicerContext[Any, Any]) -> str:
        request_id = metadata_value(context, REQUEST_ID_KEY) or f"req_{uuid.uuid4().hex}"
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        if authorize is not None:
            await authorize(context)
        return request_id

    def unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            request_id = "unknown"
            try:
                request_id = await prologue(context)
                return await behavior(request, context)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as error:
                await _abort(context, error, request_id)

        return call

    def streaming(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            request_id = "unknown"
            try:
                request_id = await prologue(context)
                async for response in behavior(request, context):
                    yield response
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as error:
                await _abort(context, error, request_id)

        return call

    kinds: dict[str, tuple[Callable[..., Any], Callable[..., Handler]]] = {
        "unary_unary": (unary, grpc.unary_unary_rpc_method_handler),
        "stream_unary": (unary, grpc.stream_unary_rpc_method_handler),
        "unary_stream": (streaming, grpc.unary_stream_rpc_method_handler),
        "stream_stream": (streaming, grpc.stream_stream_rpc_method_handler),
    }
    for attribute, (wrap, build) in kinds.items():
        behavior = getattr(handler, attribute)
        if behavior is not None:
            return build(
                wrap(behavior),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


# --- the client's side -----------------------------------------------------------------------------------

_BY_NAME: dict[str, type[MindFuError]] = {cls.__name__: cls for cls in ALL_ERRORS}
_BY_CODE: dict[grpc.StatusCode, type[MindFuError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequest,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: PayloadTooLarge,
}


def _details(trailing: Iterable[tuple[str, str | bytes]] | None) -> status_pb2.Status | None:
    for key, value in trailing or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return None


def error_from_rpc(error: grpc.aio.AioRpcError, *, target: str) -> MindFuError:
    """The domain error a failed call stands for (so an edge over a remote core answers as a local one)."""
    code = error.code()
    message = error.details() or code.name
    status = _details(error.trailing_metadata())
    name, param, reason, retry_after = None, None, None, None
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN:
                name, reason = info.metadata.get("error"), info.reason
                param = info.metadata.get("param")
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToMilliseconds() / 1000
    cls = _BY_NAME.get(name or "")
    if cls is Overloaded:
        return Overloaded(message, retry_after=retry_after or 1.0, code=reason or None)
    if cls is UpstreamUnavailable or (cls is None and code in _UNREACHABLE):
        return UpstreamUnavailable(
            message if cls is not None else f"the MindFu core at {target} is unavailable ({message})",
            retry_after=retry_after or 1.0,
        )
    if cls is not None:
        return cls(message, param=param, code=reason or None)
    if code is grpc.StatusCode.CANCELLED:
        raise asyncio.CancelledError(message)
    return _BY_CODE.get(code, EngineFailure)(message)


_UNREACHABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN}
