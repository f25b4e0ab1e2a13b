"""Ledger records as RFC 8785 canonical JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.entries import (
    MAX_ENTRY_BYTES,
    MAX_SAFE_INTEGER,
    EntryError,
    LedgerRecord,
    format_timestamp,
)

RECORDED_AT = datetime(2025, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)


def _record(**overrides: Any) -> LedgerRecord:
    fields: dict[str, Any] = {
        "kind": "trade.settled",
        "sequence": 42,
        "recorded_at": RECORDED_AT,
        "actor": "operator:7",
        "payload": {"amount_minor": 129900, "currency": "CNY"},
    }
    fields.update(overrides)
    return LedgerRecord(**fields)


def test_canonical_json_known_answer() -> None:
    record = _record(
        payload={"title": "气象数据", "z": None, "amount_minor": 100, "ok": True, "tags": ["a", 1]}
    )
    # RFC 8785 §3.2.3: keys sorted by UTF-16 code units; §3.2.2.2: non-ASCII kept as UTF-8.
    expected = (
        '{"actor":"operator:7","kind":"trade.settled","payload":{"amount_minor":100,"ok":true,'
        '"tags":["a",1],"title":"气象数据","z":null},'
        '"recorded_at":"2025-03-01T08:00:00.250000Z","sequence":42}'
    ).encode()
    assert record.to_canonical_json() == expected


def test_round_trip_gives_an_equal_record() -> None:
    record = _record(payload={"nested": {"list": [1, [2, {"k": "v"}]], "empty": {}}})
    assert LedgerRecord.from_canonical_json(record.to_canonical_json()) == record


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(st.text(), json_values, max_size=5),
    st.datetimes(
        min_value=datetime(1, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by design
        timezones=st.just(UTC),
    ),
    st.integers(min_value=0, max_value=MAX_SAFE_INTEGER),
)
def test_any_valid_record_round_trips_byte_for_byte(
    payload: dict[str, Any], recorded_at: datetime, sequence: int
) -> None:
    record = _record(payload=payload, recorded_at=recorded_at, sequence=sequence)
    encoded = record.to_canonical_json()
    decoded = LedgerRecord.from_canonical_json(encoded)
    assert decoded == record
    assert decoded.to_canonical_json() == encoded


def test_payload_is_frozen_and_detached_from_the_caller() -> None:
    payload: dict[str, Any] = {"items": [1, 2]}
    record = _record(payload=payload)
    payload["items"].append(3)
    payload["extra"] = 1
    assert record.to_canonical_json().count(b"[1,2]") == 1
    with pytest.raises(TypeError):
        record.payload["items"] = []  # type: ignore[index]


def test_utc_equivalent_offsets_are_normalized() -> None:
    zero_offset = timezone(timedelta(0), "GMT")
    record = _record(recorded_at=RECORDED_AT.replace(tzinfo=zero_offset))
    assert record.recorded_at.tzinfo is UTC
    assert format_timestamp(record.recorded_at) == "2025-03-01T08:00:00.250000Z"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"recorded_at": datetime(2025, 3, 1)}, "naive"),  # noqa: DTZ001 - the invalid input under test
        ({"recorded_at": RECORDED_AT.astimezone(timezone(timedelta(hours=8)))}, "offset"),
        ({"payload": {"price": 12.5}}, "floats are not allowed"),
        ({"payload": {"list": [1.0]}}, "floats are not allowed"),
        ({"payload": {"big": 2**53}}, "outside"),
        ({"payload": {"small": -(2**53)}}, "outside"),
        ({"payload": {1: "x"}}, "keys must be strings"),
        ({"payload": {"x": {1, 2}}}, "not a JSON value"),
        ({"payload": {"x": "\ud800"}}, "not valid Unicode"),
        ({"payload": ["not", "an", "object"]}, "JSON object"),
        ({"kind": ""}, "kind"),
        ({"actor": 3}, "actor"),
        ({"sequence": -1}, "sequence"),
        ({"sequence": True}, "sequence"),
        ({"sequence": 2**53}, "sequence"),
    ],
)
def test_invalid_records_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(EntryError, match=message):
        _record(**overrides)


def test_deeply_nested_payload_is_rejected() -> None:
    nested: Any = "leaf"
    for _ in range(40):
        nested = [nested]
    with pytest.raises(EntryError, match="nested deeper"):
        _record(payload={"deep": nested})


def test_oversized_entries_are_rejected_both_ways() -> None:
    record = _record(payload={"blob": "x" * MAX_ENTRY_BYTES})
    with pytest.raises(EntryError, match="above the 16384-byte limit"):
        record.to_canonical_json()
    with pytest.raises(EntryError, match="above the 16384-byte limit"):
        LedgerRecord.from_canonical_json(b" " * (MAX_ENTRY_BYTES + 1))


def test_integers_at_the_safe_limit_are_accepted() -> None:
    record = _record(payload={"max": MAX_SAFE_INTEGER, "min": -MAX_SAFE_INTEGER})
    assert LedgerRecord.from_canonical_json(record.to_canonical_json()) == record


CANONICAL = _record().to_canonical_json()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (CANONICAL.replace(b'{"actor"', b'{ "actor"'), "canonical form"),
        (CANONICAL.replace(b"129900", b"1.299e5"), "floats"),
        (CANONICAL.replace(b"129900", b"NaN"), "NaN is not JSON"),
        (CANONICAL.replace(b"Z", b"+00:00"), "ending in 'Z'"),
        (CANONICAL.replace(b".250000Z", b".25Z"), "canonical form"),
        (CANONICAL.replace(b"2025-03-01T08", b"2025-03-01 08"), "canonical form"),
        (CANONICAL.replace(b".250000Z", b".250000+08:00Z"), "time zone"),
        (CANONICAL.replace(b'"CNY"', b'"\\u0043NY"'), "canonical form"),
        (CANONICAL.replace(b'"sequence":42', b'"sequence":42,"extra":1'), "exactly the fields"),
        (CANONICAL.replace(b'"actor":"operator:7"', b'"actor":"a","actor":"b"'), "duplicate"),
        (CANONICAL[:-1], "not valid UTF-8 JSON"),
        (b"\xff" + CANONICAL, "not valid UTF-8 JSON"),
        (b'{"payload":{"n":' + b"9" * 5000 + b"}}", "not valid UTF-8 JSON"),
        (b"[1]", "exactly the fields"),
    ],
)
def test_non_canonical_or_invalid_bytes_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(EntryError, match=message):
        LedgerRecord.from_canonical_json(data)
