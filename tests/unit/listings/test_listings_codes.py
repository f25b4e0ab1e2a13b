from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listings.codes import (
    CHECK_ALPHABET,
    CodeCheckError,
    MalformedCodeError,
    UnifiedCode,
    mod37_2_check_character,
    parse_code,
    resource_code_set,
)
from listings.domains import SubjectKind
from listings.errors import DomainRuleError, DomainValueError

codes = st.builds(
    UnifiedCode,
    issuer=st.from_regex(r"[A-Z][A-Z0-9]{1,5}", fullmatch=True),
    kind=st.sampled_from(SubjectKind),
    year=st.integers(min_value=1000, max_value=9999),
    serial=st.integers(min_value=1, max_value=99_999_999),
)
# Characters a printed code can be mistyped into, after normalisation (which uppercases).
PRINTABLE_CODE_CHARACTERS = CHECK_ALPHABET + "-"


def test_iso_7064_mod_37_2_reference_example() -> None:
    # The worked example of ISO/IEC 7064 for MOD 37-2.
    assert mod37_2_check_character("G123498654321") == "H"


def test_format_layout() -> None:
    code = UnifiedCode(issuer="GZDEX", kind=SubjectKind.PRODUCT, year=2025, serial=42)
    assert code.format() == "GZDEX-P-2025-00000042-7"
    assert str(code) == code.format()
    assert code.payload == "GZDEXP202500000042"


@given(codes)
def test_round_trip(code: UnifiedCode) -> None:
    assert parse_code(code.format()) == code


@given(codes)
def test_every_single_character_substitution_is_rejected(code: UnifiedCode) -> None:
    text = code.format()
    for position, original in enumerate(text):
        for replacement in PRINTABLE_CODE_CHARACTERS:
            if replacement == original:
                continue
            mistyped = text[:position] + replacement + text[position + 1 :]
            with pytest.raises((MalformedCodeError, CodeCheckError)):
                parse_code(mistyped)


@given(codes)
def test_every_adjacent_transposition_is_rejected(code: UnifiedCode) -> None:
    text = code.format()
    for position in range(len(text) - 1):
        first, second = text[position], text[position + 1]
        if first == second:
            continue
        swapped = text[:position] + second + first + text[position + 2 :]
        with pytest.raises((MalformedCodeError, CodeCheckError)):
            parse_code(swapped)


def test_codes_ending_in_star_round_trip() -> None:
    code = next(
        candidate
        for serial in range(1, 1000)
        if (candidate := UnifiedCode("SZDE", SubjectKind.RESOURCE, 2025, serial)).check_character
        == "*"
    )
    assert code.format().endswith("-*")
    assert parse_code(code.format()) == code


def test_normalisation_strips_uppercases_and_folds_full_width() -> None:
    code = UnifiedCode(issuer="GZDEX", kind=SubjectKind.PRODUCT, year=2025, serial=42)
    assert parse_code("  gzdex-p-2025-00000042-7\n") == code
    assert parse_code("ＧＺＤＥＸ－Ｐ－２０２５－００００００４２－７") == code


def test_a_wrong_check_character_says_mistyped() -> None:
    with pytest.raises(CodeCheckError) as caught:
        parse_code("GZDEX-P-2025-00000042-8", field="source_resource_codes[0]")
    assert caught.value.field == "source_resource_codes[0]"
    assert caught.value.code == "code_check_failed"
    assert "mistyped" in caught.value.message
    assert "'7'" in caught.value.message
    assert isinstance(caught.value, DomainValueError)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("GZDEX-P-2025-00000042", "parts"),
        ("GZDEX P 2025 00000042 7", "parts"),
        ("GZDEX-P-2025-00000042-7-1", "parts"),
        ("G-P-2025-00000042-7", "issuer"),
        ("1ZDEX-P-2025-00000042-7", "issuer"),
        ("GZDEXPO-P-2025-00000042-7", "issuer"),
        ("GZDEX-X-2025-00000042-7", "kind"),
        ("GZDEX-PR-2025-00000042-7", "kind"),
        ("GZDEX-P-25-00000042-7", "year"),
        ("GZDEX-P-0999-00000042-7", "year"),
        ("GZDEX-P-２０２5-00000042-7x", "check character"),
        ("GZDEX-P-2025-42-7", "serial"),
        ("GZDEX-P-2025-00000000-7", "serial"),
        ("GZDEX-P-2025-0000004٢-7", "serial"),  # an Arabic-Indic digit is not 0-9
        ("GZDEX-P-2025-00000042-", "check character"),
        ("GZDEX-P-2025-00000042-#", "check character"),
        ("", "parts"),
    ],
)
def test_malformed_codes_say_which_part_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(MalformedCodeError) as caught:
        parse_code(text, field="target_code")
    assert caught.value.field == "target_code"
    assert caught.value.code == "malformed_code"
    assert complaint in caught.value.message


def test_non_text_is_malformed() -> None:
    with pytest.raises(MalformedCodeError):
        parse_code(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (("gz", SubjectKind.PRODUCT, 2025, 1), "issuer"),
        (("GZ", "P", 2025, 1), "kind"),
        (("GZ", SubjectKind.PRODUCT, 999, 1), "year"),
        (("GZ", SubjectKind.PRODUCT, True, 1), "year"),
        (("GZ", SubjectKind.PRODUCT, 2025, 0), "serial"),
        (("GZ", SubjectKind.PRODUCT, 2025, 100_000_000), "serial"),
    ],
)
def test_constructing_an_invalid_code_names_the_part(
    arguments: tuple[object, ...], field: str
) -> None:
    with pytest.raises(MalformedCodeError) as caught:
        UnifiedCode(*arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_resource_code_set_accepts_only_resource_codes() -> None:
    resource = UnifiedCode("GZ", SubjectKind.RESOURCE, 2024, 1)
    product = UnifiedCode("GZ", SubjectKind.PRODUCT, 2024, 1)
    assert resource_code_set("sources", [resource, resource]) == frozenset({resource})
    with pytest.raises(DomainRuleError) as caught:
        resource_code_set("sources", [resource, product])
    assert caught.value.field == "sources"
    with pytest.raises(DomainRuleError, match="at least one"):
        resource_code_set("sources", [])
    with pytest.raises(DomainValueError):
        resource_code_set("sources", ["GZ-R-2024-00000001-X"])
