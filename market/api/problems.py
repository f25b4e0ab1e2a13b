"""RFC 9457 problem details: every error leaves the API as `application/problem+json`.

Each problem has a stable `type` (a path under /problems/, resolvable on this server), the HTTP
status, a title, a detail for this occurrence, and for bad input the offending `field` together
with an `errors` list when more than one field is wrong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from listings.errors import InvalidTransitionError, ListingsError
from listings.errors import NotFoundError as ListingsNotFoundError
from market.errors import MarketError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"

logger = logging.getLogger("market.api")


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    description: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    problem.slug: problem
    for problem in (
        ProblemType("bad-request", "Bad request",
                    "The request could not be understood: malformed JSON, invalid UTF-8, or a "
                    "value of the wrong type. `field` names the offending field when known."),
        ProblemType("validation", "Invalid input",
                    "The request was understood but a field breaks a rule; `field` names it and "
                    "`errors` lists every offending field."),
        ProblemType("unauthenticated", "Authentication required",
                    "No bearer token was sent, or it is malformed, unknown, expired or revoked."),
        ProblemType("forbidden", "Forbidden",
                    "The caller is authenticated but its role may not call this route."),
        ProblemType("not-found", "Not found",
                    "No such resource, or it belongs to another organisation."),
        ProblemType("method-not-allowed", "Method not allowed",
                    "The route exists but does not accept this HTTP method."),
        ProblemType("conflict", "Conflict",
                    "The request conflicts with the current state, e.g. a duplicate name or an "
                    "idempotency key reused with a different request."),
        ProblemType("payload-too-large", "Payload too large",
                    "The request body is larger than the exchange accepts."),
        ProblemType("unsupported-media-type", "Unsupported media type",
                    "The request body is not in a media type this route accepts."),
        ProblemType("too-many-requests", "Too many requests",
                    "The caller sent too many requests; retry after the given delay."),
        ProblemType("service-unavailable", "Service unavailable",
                    "A part the exchange depends on is not available at the moment."),
        ProblemType("internal-error", "Internal error",
                    "The exchange failed unexpectedly; nothing was written. Staff are alerted."),
    )
}

_SLUG_OF_STATUS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
                   405: "method-not-allowed", 409: "conflict", 413: "payload-too-large",
                   415: "unsupported-media-type", 422: "validation", 429: "too-many-requests",
                   503: "service-unavailable"}

# msgspec reports the location of a bad value as a JSON path such as `$.prices[0].amount_minor`.
_MSGSPEC_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")


def problem_response(slug: str, status: int, detail: str, *, field: str | None = None,
                     errors: list[dict[str, str]] | None = None,
                     headers: Mapping[str, str] | None = None) -> Response[dict[str, Any]]:
    problem_type = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": problem_type.title,
                            "status": status, "detail": detail}
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return Response(content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE,
                    headers=dict(headers or {}))


def handle_market_error(_: Request[Any, Any, Any], error: MarketError) -> Response[dict[str, Any]]:
    return problem_response(error.problem, error.status, error.detail, field=error.field)


def handle_validation_error(_: Request[Any, Any, Any],
                            error: ValidationException) -> Response[dict[str, Any]]:
    errors = [_field_error(item) for item in (error.extra or []) if isinstance(item, dict)]
    field = next((item["field"] for item in errors if item.get("field")), None)
    detail = errors[0]["message"] if errors else str(error.detail)
    return problem_response("bad-request", 400, detail, field=field, errors=errors or None)


def handle_undecodable_body(_: Request[Any, Any, Any],
                            error: UnicodeDecodeError) -> Response[dict[str, Any]]:
    # Litestar decodes the body lazily, so invalid UTF-8 surfaces as this exception.
    return problem_response("bad-request", 400,
                           f"the request body is not valid UTF-8 (byte {error.start})")


def handle_http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    status = error.status_code
    slug = _SLUG_OF_STATUS.get(status, "bad-request" if status < 500 else "internal-error")
    headers = dict(error.headers or {})
    if isinstance(error, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="exchange"')
    detail = str(error.detail) if status < 500 else PROBLEM_TYPES[slug].description
    if isinstance(error, PermissionDeniedException) and not error.detail:
        detail = PROBLEM_TYPES["forbidden"].description
    return problem_response(slug, status, detail, headers=headers)


def handle_unexpected_error(request: Request[Any, Any, Any],
                            error: Exception) -> Response[dict[str, Any]]:
    # The detail stays generic: an exception message may carry data that must not leak.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem_response("internal-error", HTTP_500_INTERNAL_SERVER_ERROR,
                            PROBLEM_TYPES["internal-error"].description)


def _field_error(item: Mapping[str, Any]) -> dict[str, str]:
    message = str(item.get("message", "invalid value"))
    field = item.get("key")
    match = _MSGSPEC_PATH.search(message)
    if match:
        message = message[: match.start()]
        field = match.group("path").lstrip(".") or field
    unknown = _NAMED_FIELD.search(message)
    if unknown:
        prefix = f"{field}." if field and field != "data" else ""
        field = prefix + unknown.group("name")
    result = {"message": message}
    if field:
        result["field"] = str(field)
    if item.get("source"):
        result["source"] = str(item["source"])
    return result


def handle_listings_error(_: Request[Any, Any, Any],
                          error: ListingsError) -> Response[dict[str, Any]]:
    """A listings domain error: a state-machine refusal is a conflict with the current state, an
    unknown or foreign record is not found, anything else is invalid input naming its field."""
    if isinstance(error, InvalidTransitionError):
        slug, status = "conflict", 409
    elif isinstance(error, ListingsNotFoundError):
        slug, status = "not-found", 404
    else:
        slug, status = "validation", 422
    blockers = getattr(error, "blockers", ())
    errors = [{"field": blocker.field, "message": blocker.message, "code": blocker.reason.value}
              for blocker in blockers] or [{"field": error.field, "message": error.message,
                                            "code": error.code}]
    return problem_response(slug, status, f"{error.field}: {error.message}", field=error.field,
                            errors=errors)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    MarketError: handle_market_error,
    ListingsError: handle_listings_error,
    ValidationException: handle_validation_error,
    UnicodeDecodeError: handle_undecodable_body,
    HTTPException: handle_http_error,
    Exception: handle_unexpected_error,
}
