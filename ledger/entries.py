"""Ledger entries: records of any kind, serialized as RFC 8785 canonical JSON.

The canonical bytes are what the Merkle tree hashes (`leaf_hash(record.to_canonical_json())`),
so one record must have exactly one encoding. Two JSON traps are closed here rather than left
to callers: floats (RFC 8785 §3.2.2.3 renders them through ECMAScript's number formatting, so
amounts could drift; money is integer minor units anyway) and integers outside the I-JSON safe
range (RFC 7493 §2.2, required by RFC 8785 §3.2.2.3), which other parsers would silently round.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeAlias

from ledger.canonical import MAX_SAFE_INTEGER, canonical_json

# Far below the 65,535-byte limit of a tlog-tiles entry bundle's uint16 length prefix
# (c2sp.org/tlog-tiles, "Log entries"), leaving room for future envelope fields.
MAX_ENTRY_BYTES = 16 * 1024
# Deep enough for any real payload, shallow enough that validation cannot exhaust the stack.
MAX_PAYLOAD_DEPTH = 32

JSONValue: TypeAlias = "bool | int | str | Sequence[JSONValue] | Mapping[str, JSONValue] | None"

_RECORD_FIELDS = frozenset({"actor", "kind", "payload", "recorded_at", "sequence"})


class EntryError(ValueError):
    """A ledger record is invalid or its bytes are not the canonical encoding."""


def _freeze(value: object, location: str, depth: int) -> JSONValue:
    """Validate one JSON value and return an immutable copy of it."""
    if depth > MAX_PAYLOAD_DEPTH:
        raise EntryError(f"{location}: nested deeper than {MAX_PAYLOAD_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise EntryError(f"{location}: integer {value} is outside ±(2^53−1) (I-JSON)")
        return int(value)
    if isinstance(value, str):
        return _require_unicode(value, location)
    if isinstance(value, float):
        raise EntryError(f"{location}: floats are not allowed; use integer minor units or a string")
    if isinstance(value, list | tuple):
        return tuple(
            _freeze(item, f"{location}[{position}]", depth + 1)
            for position, item in enumerate(value)
        )
    if isinstance(value, Mapping):
        return _freeze_object(value, location, depth)
    raise EntryError(f"{location}: {type(value).__name__} is not a JSON value")


def _freeze_object(value: Mapping[Any, Any], location: str, depth: int) -> Mapping[str, JSONValue]:
    frozen: dict[str, JSONValue] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise EntryError(f"{location}: object keys must be strings, got {key!r}")
        _require_unicode(key, f"{location} key")
        frozen[key] = _freeze(item, f"{location}.{key}", depth + 1)
    return MappingProxyType(frozen)


def _require_unicode(text: str, location: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        # RFC 8785 §3.2.2.2 / I-JSON: lone surrogates have no UTF-8 form.
        raise EntryError(f"{location}: string is not valid Unicode") from error
    return text


def _thaw(value: JSONValue) -> Any:
    """Plain dicts and lists, the only containers RFC 8785 (`canonical_json`) serializes."""
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 §5.6 date-time in UTC with a 'Z' and always six fraction digits, so that one
    instant has exactly one form, e.g. `2025-03-01T08:00:00.000000Z`."""
    naive_utc = moment.astimezone(UTC).replace(tzinfo=None)
    return naive_utc.isoformat(timespec="microseconds") + "Z"


def _parse_timestamp(text: object) -> datetime:
    """Parse `format_timestamp` output; the caller's re-encoding check rejects other forms."""
    if not isinstance(text, str) or not text.endswith("Z"):
        raise EntryError(f"recorded_at {text!r} is not an RFC 3339 UTC time ending in 'Z'")
    try:
        naive_utc = datetime.fromisoformat(text[:-1])
    except ValueError as error:
        raise EntryError(f"recorded_at {text!r} is not an RFC 3339 UTC time") from error
    if naive_utc.tzinfo is not None:
        raise EntryError(f"recorded_at {text!r} carries a second time zone designator")
    return naive_utc.replace(tzinfo=UTC)


def _reject_float(text: str) -> float:
    raise EntryError(f"floats are not allowed in ledger entries, got {text}")


def _reject_constant(text: str) -> float:
    raise EntryError(f"{text} is not JSON")


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # RFC 8785 §3.1 (via I-JSON): duplicate names make a document ambiguous.
            raise EntryError(f"duplicate object key {key!r}")
        result[key] = value
    return result


def _check_sequence(sequence: object) -> None:
    if isinstance(sequence, bool) or not isinstance(sequence, int):
        raise EntryError("sequence must be an integer")
    if not 0 <= sequence <= MAX_SAFE_INTEGER:
        raise EntryError(f"sequence {sequence} is outside 0…2^53−1")


@dataclass(frozen=True)
class LedgerRecord:
    """One entry of the log: what happened (`kind`, `payload`), when, and who did it.

    `sequence` is the record's position as assigned by its writer; `payload` is frozen on
    construction (nested objects become read-only mappings and arrays become tuples).
    """

    kind: str
    sequence: int
    recorded_at: datetime
    actor: str
    payload: Mapping[str, JSONValue]

    def __post_init__(self) -> None:
        for name in ("kind", "actor"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise EntryError(f"{name} must be a non-empty string")
            _require_unicode(value, name)
        _check_sequence(self.sequence)
        if not isinstance(self.recorded_at, datetime):
            raise EntryError("recorded_at must be a datetime")
        offset = self.recorded_at.utcoffset()
        if offset is None:
            raise EntryError("recorded_at must be timezone-aware UTC, got a naive datetime")
        if offset != timedelta(0):
            raise EntryError(f"recorded_at must be in UTC, got offset {offset}")
        if not isinstance(self.payload, Mapping):
            raise EntryError("payload must be a JSON object")
        object.__setattr__(self, "recorded_at", self.recorded_at.astimezone(UTC))
        object.__setattr__(self, "payload", _freeze_object(self.payload, "payload", 1))

    def at_sequence(self, sequence: int) -> LedgerRecord:
        """This record at position ``sequence``. Only the sequence is checked: the other fields
        were validated and frozen when this record was made, so they are shared, not walked
        again as ``dataclasses.replace`` would."""
        _check_sequence(sequence)
        sequenced = copy.copy(self)
        object.__setattr__(sequenced, "sequence", sequence)
        return sequenced

    def to_canonical_json(self) -> bytes:
        """The RFC 8785 encoding of the record; raises `EntryError` above `MAX_ENTRY_BYTES`."""
        encoded = canonical_json(
            {
                "actor": self.actor,
                "kind": self.kind,
                "payload": _thaw(self.payload),
                "recorded_at": format_timestamp(self.recorded_at),
                "sequence": self.sequence,
            }
        )
        if len(encoded) > MAX_ENTRY_BYTES:
            raise EntryError(
                f"entry is {len(encoded)} bytes, above the {MAX_ENTRY_BYTES}-byte limit"
            )
        return encoded

    @classmethod
    def from_canonical_json(cls, data: bytes) -> LedgerRecord:
        """Parse an entry, accepting only the exact bytes `to_canonical_json` would produce."""
        if len(data) > MAX_ENTRY_BYTES:
            raise EntryError(f"entry is {len(data)} bytes, above the {MAX_ENTRY_BYTES}-byte limit")
        try:
            document = json.loads(
                data.decode("utf-8"),
                parse_float=_reject_float,
                parse_constant=_reject_constant,
                object_pairs_hook=_object_without_duplicate_keys,
            )
        except EntryError:
            raise
        except (ValueError, RecursionError) as error:
            # ValueError covers bad UTF-8, bad JSON and integers past the int-parsing digit limit.
            raise EntryError(f"entry is not valid UTF-8 JSON: {error}") from error
        if not isinstance(document, dict) or set(document) != _RECORD_FIELDS:
            raise EntryError(
                f"entry must be an object with exactly the fields {sorted(_RECORD_FIELDS)}"
            )
        record = cls(
            kind=document["kind"],
            sequence=document["sequence"],
            recorded_at=_parse_timestamp(document["recorded_at"]),
            actor=document["actor"],
            payload=document["payload"],
        )
        if record.to_canonical_json() != data:
            raise EntryError("entry is valid JSON but not in RFC 8785 canonical form")
        return record
