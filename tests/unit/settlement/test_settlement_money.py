"""Money: integer minor units, one currency, bigint range, no floats."""

import operator
from collections.abc import Callable
from decimal import Decimal

import pytest

from settlement.errors import AmountOutOfRangeError, CurrencyMismatchError, InvalidMoneyError
from settlement.money import INT64_MAX, INT64_MIN, Money, format_cny


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def test_same_currency_arithmetic() -> None:
    assert cny(150) + cny(250) == cny(400)
    assert cny(150) - cny(250) == cny(-100)
    assert -cny(7) == cny(-7)
    assert cny(125) * 3 == cny(375)
    assert 3 * cny(125) == cny(375)


@pytest.mark.parametrize("combine", [operator.add, operator.sub, operator.lt, operator.ge])
def test_mixing_currencies_is_refused(combine: Callable[[Money, Money], object]) -> None:
    with pytest.raises(CurrencyMismatchError) as raised:
        combine(cny(100), Money(100, "USD"))
    assert raised.value.field == "currency"
    assert raised.value.code == "currency_mismatch"


def test_equality_across_currencies_is_false_not_an_error() -> None:
    assert cny(100) != Money(100, "USD")


def test_ordering_and_builtin_min_max() -> None:
    assert cny(1) < cny(2) <= cny(2)
    assert cny(3) > cny(2) >= cny(2)
    assert min(cny(5), cny(3), cny(9)) == cny(3)
    assert max(cny(5), cny(3), cny(9)) == cny(9)


@pytest.mark.parametrize("amount", [1.0, 0.5, Decimal(1), Decimal("0.01"), True, "100"])
def test_non_integer_amounts_are_refused(amount: object) -> None:
    with pytest.raises(InvalidMoneyError) as raised:
        Money(amount, "CNY")  # type: ignore[arg-type]
    assert raised.value.field == "amount_minor"


@pytest.mark.parametrize("quantity", [1.5, 2.0, Decimal(2), True])
def test_multiplying_by_a_non_integer_is_refused(quantity: object) -> None:
    with pytest.raises(InvalidMoneyError):
        cny(100) * quantity  # type: ignore[operator]


@pytest.mark.parametrize("currency", ["cny", "CN", "CNYY", "C1Y", "", "元"])
def test_currency_must_be_three_uppercase_letters(currency: str) -> None:
    with pytest.raises(InvalidMoneyError) as raised:
        Money(1, currency)
    assert raised.value.field == "currency"


def test_bigint_bounds_are_inclusive() -> None:
    assert cny(INT64_MAX).amount_minor == 2**63 - 1
    assert cny(INT64_MIN).amount_minor == -(2**63)
    for outside in (INT64_MAX + 1, INT64_MIN - 1):
        with pytest.raises(AmountOutOfRangeError) as raised:
            cny(outside)
        assert raised.value.code == "amount_out_of_range"


def test_arithmetic_overflowing_bigint_is_refused() -> None:
    with pytest.raises(AmountOutOfRangeError):
        cny(INT64_MAX) + cny(1)
    with pytest.raises(AmountOutOfRangeError):
        cny(INT64_MIN) - cny(1)
    with pytest.raises(AmountOutOfRangeError):
        cny(2**62) * 2
    with pytest.raises(AmountOutOfRangeError):
        -cny(INT64_MIN)


def test_money_is_immutable_and_hashable() -> None:
    price = cny(100)
    with pytest.raises(AttributeError):
        price.amount_minor = 5  # type: ignore[misc]
    assert {price, cny(100)} == {price}


@pytest.mark.parametrize(
    ("amount_minor", "text"),
    [(1234, "¥12.34"), (0, "¥0.00"), (5, "¥0.05"), (-5, "-¥0.05"), (100_000_00, "¥100000.00")],
)
def test_format_cny(amount_minor: int, text: str) -> None:
    assert format_cny(cny(amount_minor)) == text


def test_format_cny_refuses_other_currencies() -> None:
    with pytest.raises(CurrencyMismatchError):
        format_cny(Money(100, "USD"))
