"""The only exceptions that cross the hexagon; every edge maps each of them to its own status."""

from __future__ import annotations


class MindFuError(Exception):
    """Base of every error MindFu raises on purpose.

    ``code`` is a stable machine-readable identifier (it becomes the OpenAI error ``code``);
    ``param`` names the offending request field when there is one.
    """

    code: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(MindFuError):
    """The request is malformed or asks for something the platform cannot do."""

    code = "invalid_request"


class ContextLengthExceeded(InvalidRequest):
    """The prompt (plus the requested completion) does not fit the model's context window."""

    code = "context_length_exceeded"


class PayloadTooLarge(MindFuError):
    """The request body or an uploaded file is over the configured limit."""

    code = "payload_too_large"


class UnsupportedMediaType(MindFuError):
    """An upload whose content type MindFu cannot handle."""

    code = "unsupported_media_type"


class UnprocessableContent(MindFuError):
    """Content of a supported type that cannot be used: corrupt, encrypted, a zip bomb, or without text."""

    code = "unprocessable_content"


class Unauthenticated(MindFuError):
    """No credentials, or credentials that do not match any configured key."""

    code = "invalid_api_key"


class PermissionDenied(MindFuError):
    """Valid credentials that are not allowed to do this."""

    code = "permission_denied"


class NotFound(MindFuError):
    """A model, document, conversation or job that does not exist."""

    code = "not_found"


class Conflict(MindFuError):
    """The operation conflicts with the current state (a duplicate, a job already running)."""

    code = "conflict"


class Overloaded(MindFuError):
    """Every slot is busy and the wait queue is full; retry after ``retry_after`` seconds."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class UpstreamUnavailable(MindFuError):
    """A backing service (remote engine, core, database, vector store) cannot be reached; when it is
    expected back soon, ``retry_after`` says in how many seconds to try again."""

    code = "upstream_unavailable"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.retry_after = retry_after


class EngineFailure(MindFuError):
    """The engine failed while generating; details are logged, not shown to clients."""

    code = "engine_failure"


class ConfigurationError(MindFuError):
    """Settings that cannot work (a missing model file, an unknown backend); raised at start-up."""

    code = "configuration_error"


#: Every error class an edge must map; the HTTP and gRPC tables are tested against this tuple.
ALL_ERRORS: tuple[type[MindFuError], ...] = (
    MindFuError,
    InvalidRequest,
    ContextLengthExceeded,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnprocessableContent,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    Conflict,
    Overloaded,
    UpstreamUnavailable,
    EngineFailure,
    ConfigurationError,
)
