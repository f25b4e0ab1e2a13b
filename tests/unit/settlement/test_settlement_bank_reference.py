"""Bank transfer references: ISO 7064 MOD 97-10 check digits catch typing errors."""

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.payments.bank_transfer import (
    check_digits,
    format_reference,
    is_valid_reference,
)
from settlement.payments.provider import PaymentStatus

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _mod97_remainder(text: str) -> int:
    # ISO 7064 MOD 97-10 validation: the payload followed by its check digits leaves 1.
    return int("".join(str(ALPHABET.index(character)) for character in text)) % 97


def test_reference_shape_and_validation() -> None:
    reference = format_reference(2026, 123)
    assert reference.startswith("PDX-2026-000123-")
    assert is_valid_reference(reference)
    assert is_valid_reference(" " + reference.lower() + " ")
    wrong_check = f"{(int(reference[-2:]) + 1) % 100:02d}"
    assert not is_valid_reference(reference[:-2] + wrong_check)
    assert not is_valid_reference("PDX-2026-123-K")
    assert _mod97_remainder("PDX2026000123" + reference[-2:]) == 1


@settings(max_examples=300)
@given(st.integers(2000, 2999), st.integers(0, 10**9 - 1), st.data())
def test_single_substitutions_and_adjacent_transpositions_are_caught(
        year: int, number: int, data: st.DataObject) -> None:
    # What varies in a reference is its digits; those are what a buyer can mistype.
    digits = f"{year:04d}{number:06d}"
    check = check_digits("PDX" + digits)
    position = data.draw(st.integers(0, len(digits) - 1))
    replacement = data.draw(st.sampled_from("0123456789").filter(lambda c: c != digits[position]))
    substituted = digits[:position] + replacement + digits[position + 1:]
    assert check_digits("PDX" + substituted) != check
    swap = data.draw(st.integers(0, len(digits) - 2))
    if digits[swap] != digits[swap + 1]:
        swapped = digits[:swap] + digits[swap + 1] + digits[swap] + digits[swap + 2:]
        assert check_digits("PDX" + swapped) != check


def test_payment_status_only_moves_forward() -> None:
    assert PaymentStatus.CREATED.can_move_to(PaymentStatus.SUCCEEDED)
    assert PaymentStatus.PROCESSING.can_move_to(PaymentStatus.FAILED)
    assert PaymentStatus.FAILED.can_move_to(PaymentStatus.SUCCEEDED)
    assert not PaymentStatus.SUCCEEDED.can_move_to(PaymentStatus.PROCESSING)
    assert not PaymentStatus.SUCCEEDED.can_move_to(PaymentStatus.FAILED)
    assert not PaymentStatus.PROCESSING.can_move_to(PaymentStatus.CREATED)
    assert not PaymentStatus.CANCELED.can_move_to(PaymentStatus.SUCCEEDED)
    assert not PaymentStatus.PROCESSING.can_move_to(PaymentStatus.PROCESSING)
