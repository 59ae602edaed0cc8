"""Errors the core raises, each knowing its HTTP status and a short code.

Handlers turn them into `{"error": code, "detail": reason}` JSON; nothing
else in kds decides an HTTP status.
"""

from __future__ import annotations

import math
from typing import Any


class KdsError(Exception):
    """Base: an error with an HTTP status, a short code and a human reason."""

    status = 400
    error = "bad_request"
    #: HTTP headers the answer carries (Retry-After, ...).
    headers: dict[str, str] = {}

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"error": self.error, "detail": self.detail, **self.extra}


class BadRequest(KdsError):
    """The request is malformed (bad JSON, wrong types, out-of-range values)."""

    status = 400
    error = "bad_request"


class ValidationFailed(KdsError):
    """The body is JSON but does not fit the model."""

    status = 422
    error = "validation_failed"


class Unauthorized(KdsError):
    """No or an unknown credential."""

    status = 401
    error = "unauthorized"


class Forbidden(KdsError):
    """A known credential without the role the route needs."""

    status = 403
    error = "forbidden"


class NotFound(KdsError):
    """No such order, item or endpoint."""

    status = 404
    error = "not_found"


class ConflictError(KdsError):
    """The same id already stands for something else."""

    status = 409
    error = "conflict"


class ConstraintViolation(ConflictError):
    """A write broke a constraint of the schema (e.g. a UNIQUE key): rejected, the store is fine.

    Raised by the stores (`kds.store` names it too); here so a source can tell the store's
    refusal from a conflict without importing the store.
    """


class Held(ConflictError):
    """The item is held back from its station (a later course, a scheduled order)."""

    error = "held"


class InvalidTransition(ConflictError):
    """A status change the state machine does not allow."""

    error = "invalid_transition"


class PayloadTooLarge(KdsError):
    """The body exceeds the configured limit."""

    status = 413
    error = "payload_too_large"


class UnsupportedMediaType(KdsError):
    """The body is not in a media type the route reads (the API reads application/json)."""

    status = 415
    error = "unsupported_media_type"


class RateLimited(KdsError):
    """Too many requests from one client; `retry_after` seconds until the next is accepted."""

    status = 429
    error = "rate_limited"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}


class Unavailable(KdsError):
    """The store cannot commit (disk full, read-only): nothing was acknowledged."""

    status = 503
    error = "unavailable"
