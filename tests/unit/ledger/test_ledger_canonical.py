"""The fast canonical JSON writes exactly what the RFC 8785 reference writes, or refuses what
it refuses, for any JSON value."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_json

_SAFE = 2**53 - 1

scalars = (st.none() | st.booleans() | st.text() | st.integers(-_SAFE, _SAFE)
           | st.integers() | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20)


def _outcome(encode: Any, value: Any) -> bytes | str:
    try:
        return bytes(encode(value))
    except Exception as error:  # what is refused, whatever the refusal
        return f"refused: {type(error).__name__}"


@settings(max_examples=600)
@given(json_values)
def test_it_writes_what_the_reference_writes(value: Any) -> None:
    ours, reference = _outcome(canonical_json, value), _outcome(rfc8785.dumps, value)
    if isinstance(reference, str):
        assert isinstance(ours, str)
    else:
        assert ours == reference


@pytest.mark.parametrize("value", [
    {"b": 1, "a": [True, None, "x"]},
    {"text": "quote \" backslash \\ newline \n tab \t bell \x07 del \x7f 中文 \u2028"},
    {"big": _SAFE, "small": -_SAFE},
    {"é": 1, "z": 2, "\U0001f600": 3, "\uff5e": 4},  # non-ASCII names: the reference's order
    {"float": 1.5, "exp": 1e21},
])
def test_edges_match_the_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_a_lone_surrogate_is_refused_as_the_reference_refuses_it() -> None:
    with pytest.raises(Exception) as ours:  # noqa: PT011 - the reference's own error
        canonical_json({"text": "\ud800"})
    with pytest.raises(Exception) as reference:  # noqa: PT011
        rfc8785.dumps({"text": "\ud800"})
    assert type(ours.value) is type(reference.value)
