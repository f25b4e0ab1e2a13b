"""Errors that the exchange's use cases raise; the HTTP edge maps each to a problem type."""

from __future__ import annotations


class MarketError(Exception):
    """An expected failure of a use case, answered as an RFC 9457 problem."""

    problem: str = "bad-request"
    status: int = 400
    title: str = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFoundError(MarketError):
    # Also what another tenant's resource answers, so that its existence does not leak.
    problem = "not-found"
    status = 404
    title = "Not found"


class ConflictError(MarketError):
    problem = "conflict"
    status = 409
    title = "Conflict"


class InvalidInputError(MarketError):
    problem = "validation"
    status = 422
    title = "Invalid input"


class AuthenticationError(MarketError):
    problem = "unauthenticated"
    status = 401
    title = "Authentication required"


class PermissionDeniedError(MarketError):
    problem = "forbidden"
    status = 403
    title = "Forbidden"


class ServiceUnavailableError(MarketError):
    problem = "service-unavailable"
    status = 503
    title = "Service unavailable"
