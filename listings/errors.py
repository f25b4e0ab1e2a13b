"""Errors raised by the listings domain model, and the small input checks that raise them.

Every error names the input ``field`` it concerns (a dotted/indexed path such as
``prices[1].price_minor`` or ``term.end``) and carries a stable machine ``code``, so the HTTP
edge can turn it into an RFC 9457 problem detail that tells the caller exactly what to fix
(ARCHITECTURE "bad input is a 4xx that names the field").
"""

from __future__ import annotations

import re
from datetime import date, datetime


class ListingsError(Exception):
    """Base class: a message for people, a field path and a stable code for machines."""

    default_code = "listings_error"

    def __init__(self, field: str, message: str, *, code: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code if code is not None else self.default_code


class DomainValueError(ListingsError):
    """A value is malformed or outside its vocabulary (wrong shape, unknown enum value)."""

    default_code = "invalid_value"


class DomainRuleError(ListingsError):
    """Well-formed values that together break a business rule (term overlap, core grade …)."""

    default_code = "rule_violated"


class InvalidTransitionError(ListingsError):
    """A state machine was asked for a move its current state does not allow."""

    default_code = "invalid_transition"


class NotFoundError(ListingsError):
    """No such record, or it belongs to another organisation (which must not be revealed)."""

    default_code = "not_found"


# Unicode's control characters (general category Cc), a set the standard keeps fixed: C0, DEL
# and C1. A character class finds one in a single pass, where asking each character's category
# would cost a call per character of every description read.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAK_OR_TAB = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def require_text(
    field: str, value: object, *, max_length: int, min_length: int = 1, multiline: bool = False
) -> str:
    """``value`` stripped of surrounding whitespace, if it is text of an acceptable length.

    Control characters are refused (line breaks and tabs only where ``multiline``) because this
    text is published in disclosures and catalog pages as is.
    """
    if not isinstance(value, str):
        raise DomainValueError(field, f"expected text, got {type(value).__name__}")
    text = value.strip()
    if (_CONTROL_BUT_LINE_BREAK_OR_TAB if multiline else _CONTROL).search(text) is not None:
        raise DomainValueError(field, "must not contain control characters")
    if not text:
        raise DomainValueError(field, "must not be empty")
    if len(text) < min_length:
        raise DomainValueError(field, f"must be at least {min_length} characters long")
    if len(text) > max_length:
        raise DomainValueError(field, f"must be at most {max_length} characters long")
    return text


def require_date(field: str, value: object) -> date:
    """``value`` if it is a calendar date; a ``datetime`` is refused, not silently truncated."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise DomainValueError(field, f"expected a calendar date, got {type(value).__name__}")
    return value


def require_member(field: str, value: object, kind: type) -> None:
    """Refuse ``value`` unless it is an instance of ``kind`` (a vocabulary or value type)."""
    if not isinstance(value, kind):
        raise DomainValueError(field, f"{value!r} is not a {kind.__name__}")
