"""Unified registration codes (统一登记编码, MISSION §2 登记赋码 and §8 互认互通).

Format
------
One scheme for every subject, so that registries of different exchanges can interconnect::

    <ISSUER>-<K>-<YYYY>-<NNNNNNNN>-<C>        e.g.  GZDEX-P-2025-00000042-7

``ISSUER``
    The registering exchange: 2–6 characters, an uppercase ASCII letter then uppercase letters or
    digits. It makes codes unique across the mutual-recognition network without coordination.
``K``
    Subject kind: ``R`` data resource, ``P`` data product, ``S`` data service.
``YYYY``
    Year the code was assigned (1000–9999).
``NNNNNNNN``
    Serial within (issuer, kind, year): 8 digits, zero-padded, 00000001–99999999.
``C``
    ISO/IEC 7064 MOD 37-2 check character over the payload ``ISSUER K YYYY NNNNNNNN`` with the
    hyphens removed, drawn from ``0-9 A-Z *``.

Why MOD 37-2
------------
The check character must catch every single-character substitution and every transposition of
two adjacent characters, which are the usual ways a code is mistyped or misread aloud.
MOD 37-2 is an ISO/IEC 7064 *pure* system: the payload characters get weights 2^n … 2^1 and the
check character weight 1, and the whole weighted sum must be ≡ 1 (mod 37). Because 37 is prime
and every weight is a non-zero residue, a substitution always changes the sum; because adjacent
weights differ by a factor of 2, swapping two different characters a, b changes the sum by
(a − b)·w ≢ 0 (mod 37), including a swap with the check character itself.
The hybrid MOD 37,36 system would have kept the check character alphanumeric, but it misses a
few adjacent transpositions (where the intermediate sum wraps to M), so it was not chosen. The
price is that about one code in 37 ends in ``*``, which is still safe in URLs (an RFC 3986
sub-delim) and in file names.
Separators are not part of the checked payload: every field has a fixed width or a fixed
alphabet, so a moved or replaced hyphen already fails the shape check.

Normalisation
-------------
``parse_code`` first applies Unicode NFKC (so full-width input from a Chinese IME, such as
``ＧＺＤＥＸ－Ｐ``, becomes ASCII), then strips surrounding whitespace, then uppercases. No other
repair is attempted: a code with inner spaces or other dashes is malformed. Because of the
uppercasing, a lowercase letter is the same code, not a different one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from listings.domains import SubjectKind
from listings.errors import DomainRuleError, DomainValueError

# ISO/IEC 7064 MOD 37-2: modulus 37, radix 2, character values 0–36 in this order.
CHECK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_PAYLOAD_ALPHABET = CHECK_ALPHABET[:36]  # '*' (value 36) may only be a check character
_MODULUS = 37
_RADIX = 2

SERIAL_DIGITS = 8
MAX_SERIAL = 10**SERIAL_DIGITS - 1
_ISSUER_PATTERN = re.compile(r"[A-Z][A-Z0-9]{1,5}", re.ASCII)
_YEAR_PATTERN = re.compile(r"[0-9]{4}", re.ASCII)
_SERIAL_PATTERN = re.compile(rf"[0-9]{{{SERIAL_DIGITS}}}", re.ASCII)
_FORMAT_HINT = "expected ISSUER-K-YYYY-NNNNNNNN-C, e.g. GZDEX-P-2025-00000042-7"

_KIND_BY_LETTER = {kind.code_letter: kind for kind in SubjectKind}


class MalformedCodeError(DomainValueError):
    """The text does not have the shape of a unified registration code."""

    default_code = "malformed_code"


class CodeCheckError(DomainValueError):
    """The code is well-shaped but its check character does not match: it was mistyped."""

    default_code = "code_check_failed"


def mod37_2_check_character(payload: str) -> str:
    """The ISO/IEC 7064 MOD 37-2 check character for ``payload`` (characters of ``0-9A-Z``).

    Uses the standard's recursive method: P ← (P + a)·r mod M for each character, then the check
    value c is the one that makes (P + c) mod M = 1.
    """
    running = 0
    for character in payload:
        running = ((running + _PAYLOAD_ALPHABET.index(character)) * _RADIX) % _MODULUS
    return CHECK_ALPHABET[(_MODULUS + 1 - running) % _MODULUS]


@dataclass(frozen=True, order=True)
class UnifiedCode:
    """A unified registration code; construct it directly to issue, or with ``parse_code``."""

    issuer: str
    kind: SubjectKind
    year: int
    serial: int

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or _ISSUER_PATTERN.fullmatch(self.issuer) is None:
            raise MalformedCodeError(
                "issuer",
                f"{self.issuer!r} is not 2–6 uppercase letters/digits starting with a letter",
            )
        if not isinstance(self.kind, SubjectKind):
            raise MalformedCodeError("kind", f"{self.kind!r} is not a subject kind")
        if isinstance(self.year, bool) or not isinstance(self.year, int):
            raise MalformedCodeError("year", f"{self.year!r} is not an integer")
        if not 1000 <= self.year <= 9999:
            raise MalformedCodeError("year", f"{self.year} is not a four-digit year")
        if isinstance(self.serial, bool) or not isinstance(self.serial, int):
            raise MalformedCodeError("serial", f"{self.serial!r} is not an integer")
        if not 1 <= self.serial <= MAX_SERIAL:
            raise MalformedCodeError("serial", f"{self.serial} is outside 1–{MAX_SERIAL}")

    @property
    def payload(self) -> str:
        """The characters covered by the check character (the code without hyphens and check)."""
        return f"{self.issuer}{self.kind.code_letter}{self.year:04d}{self.serial:0{SERIAL_DIGITS}d}"

    @property
    def check_character(self) -> str:
        return mod37_2_check_character(self.payload)

    def format(self) -> str:
        """The canonical printed form, e.g. ``GZDEX-P-2025-00000042-7``."""
        return (
            f"{self.issuer}-{self.kind.code_letter}-{self.year:04d}-"
            f"{self.serial:0{SERIAL_DIGITS}d}-{self.check_character}"
        )

    def __str__(self) -> str:
        return self.format()


def normalise_code_text(text: str) -> str:
    """NFKC, strip surrounding whitespace, uppercase (see the module docstring)."""
    return unicodedata.normalize("NFKC", text).strip().upper()


def parse_code(text: str, field: str = "code") -> UnifiedCode:
    """Parse a printed code, naming ``field`` in any error.

    Raises ``MalformedCodeError`` when the shape is wrong (saying which part) and
    ``CodeCheckError`` when only the check character disagrees.
    """
    if not isinstance(text, str):
        raise MalformedCodeError(field, f"expected text, got {type(text).__name__}")
    return _parse_text(text, field)


@lru_cache(maxsize=4096)
def _parse_text(text: str, field: str) -> UnifiedCode:
    """``parse_code`` of a string, remembered: every read of a product parses its codes again,
    and a code is immutable (only a successful parse is remembered; errors are raised anew)."""
    normalised = normalise_code_text(text)
    parts = normalised.split("-")
    if len(parts) != 5:
        raise MalformedCodeError(
            field, f"{normalised!r} has {len(parts)} hyphen-separated parts, not 5; {_FORMAT_HINT}"
        )
    issuer, kind_letter, year_text, serial_text, check = parts
    if _ISSUER_PATTERN.fullmatch(issuer) is None:
        raise MalformedCodeError(
            field,
            f"issuer {issuer!r} must be 2–6 uppercase letters/digits starting with a letter; "
            f"{_FORMAT_HINT}",
        )
    kind = _KIND_BY_LETTER.get(kind_letter)
    if kind is None:
        raise MalformedCodeError(field, f"kind {kind_letter!r} must be R, P or S; {_FORMAT_HINT}")
    if _YEAR_PATTERN.fullmatch(year_text) is None or year_text.startswith("0"):
        raise MalformedCodeError(
            field, f"year {year_text!r} must be four digits (1000–9999); {_FORMAT_HINT}"
        )
    if _SERIAL_PATTERN.fullmatch(serial_text) is None or int(serial_text) == 0:
        raise MalformedCodeError(
            field,
            f"serial {serial_text!r} must be {SERIAL_DIGITS} digits from 00000001; {_FORMAT_HINT}",
        )
    if len(check) != 1 or check not in CHECK_ALPHABET:
        raise MalformedCodeError(
            field, f"check character {check!r} must be one of 0-9, A-Z or *; {_FORMAT_HINT}"
        )
    code = UnifiedCode(issuer=issuer, kind=kind, year=int(year_text), serial=int(serial_text))
    if code.check_character != check:
        raise CodeCheckError(
            field,
            f"{normalised!r} fails its ISO/IEC 7064 MOD 37-2 check (check character {check!r}, "
            f"expected {code.check_character!r}): the code was probably mistyped",
        )
    return code


def resource_code_set(field: str, codes: Iterable[object]) -> frozenset[UnifiedCode]:
    """``codes`` as a non-empty set of data resource codes (kind ``R``), or an error naming
    ``field``: authorizations and products refer to resources, never to other products."""
    checked: set[UnifiedCode] = set()
    for code in codes:
        if not isinstance(code, UnifiedCode):
            raise DomainValueError(field, f"{code!r} is not a unified registration code")
        if code.kind is not SubjectKind.RESOURCE:
            raise DomainRuleError(field, f"{code} is a {code.kind.value} code, not a resource code")
        checked.add(code)
    if not checked:
        raise DomainRuleError(field, "at least one data resource code is required")
    return frozenset(checked)
