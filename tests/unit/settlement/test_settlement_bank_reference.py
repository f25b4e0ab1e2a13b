"""Bank transfer references: ISO 7064 MOD 37,36 check characters catch typing errors."""

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.payments.bank_transfer import (
    check_character,
    format_reference,
    is_valid_reference,
)
from settlement.payments.provider import PaymentStatus

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _hybrid_remainder(text: str) -> int:
    # ISO 7064 validation: processing payload + check leaves remainder 1.
    product = 36
    for character in text:
        total = (product + ALPHABET.index(character)) % 36 or 36
        product = (total * 2) % 37
    return total


def test_reference_shape_and_validation() -> None:
    reference = format_reference(2026, 123)
    assert reference.startswith("PDX-2026-000123-")
    assert is_valid_reference(reference)
    assert is_valid_reference(" " + reference.lower() + " ")
    assert not is_valid_reference(reference[:-1] + ("0" if reference[-1] != "0" else "1"))
    assert not is_valid_reference("PDX-2026-123-K")
    assert _hybrid_remainder("PDX2026000123" + reference[-1]) == 1


@settings(max_examples=200)
@given(st.text(alphabet=ALPHABET, min_size=4, max_size=20), st.data())
def test_single_substitutions_and_adjacent_transpositions_are_caught(payload: str,
                                                                     data: st.DataObject) -> None:
    check = check_character(payload)
    position = data.draw(st.integers(0, len(payload) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != payload[position]))
    substituted = payload[:position] + replacement + payload[position + 1:]
    assert check_character(substituted) != check
    swap = data.draw(st.integers(0, len(payload) - 2))
    if payload[swap] != payload[swap + 1]:
        swapped = (payload[:swap] + payload[swap + 1] + payload[swap] + payload[swap + 2:])
        assert check_character(swapped) != check


def test_payment_status_only_moves_forward() -> None:
    assert PaymentStatus.CREATED.can_move_to(PaymentStatus.SUCCEEDED)
    assert PaymentStatus.PROCESSING.can_move_to(PaymentStatus.FAILED)
    assert PaymentStatus.FAILED.can_move_to(PaymentStatus.SUCCEEDED)
    assert not PaymentStatus.SUCCEEDED.can_move_to(PaymentStatus.PROCESSING)
    assert not PaymentStatus.SUCCEEDED.can_move_to(PaymentStatus.FAILED)
    assert not PaymentStatus.PROCESSING.can_move_to(PaymentStatus.CREATED)
    assert not PaymentStatus.CANCELED.can_move_to(PaymentStatus.SUCCEEDED)
    assert not PaymentStatus.PROCESSING.can_move_to(PaymentStatus.PROCESSING)
