"""require_text: text is stripped and bounded, and control characters are refused exactly
where Unicode says a character is one (general category Cc)."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from listings.errors import DomainValueError, require_text


def _accepted(text: str, *, multiline: bool) -> bool:
    try:
        require_text("field", f"a{text}b", max_length=10, multiline=multiline)
    except DomainValueError:
        return False
    return True


@pytest.mark.parametrize("multiline", [False, True])
def test_every_control_character_is_refused_and_no_other(multiline: bool) -> None:
    allowed = {"\n", "\t"} if multiline else set()
    wrong = [hex(point) for point in range(sys.maxunicode + 1)
             if not 0xD800 <= point <= 0xDFFF  # surrogates are no text of their own
             if _accepted(chr(point), multiline=multiline)
             != (unicodedata.category(chr(point)) != "Cc" or chr(point) in allowed)]
    assert wrong == []


def test_text_is_stripped_and_bounded() -> None:
    assert require_text("title", "  数据产品  ", max_length=4) == "数据产品"
    with pytest.raises(DomainValueError, match="at most 3"):
        require_text("title", "数据产品", max_length=3)
    with pytest.raises(DomainValueError, match="empty"):
        require_text("title", "   ", max_length=3)
