"""The exchange's service fee: half-up rounding to the fen, minimum, cap, never above the price."""

import pytest

from settlement.errors import (
    AmountOutOfRangeError,
    CurrencyMismatchError,
    InvalidMoneyError,
    InvalidPolicyError,
    InvalidQuantityError,
)
from settlement.fees import (
    ServiceFeePolicy,
    Split,
    price_order,
    refund_portion,
    service_fee,
    split,
)
from settlement.money import INT64_MAX, Money


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


# 2.5 % of the price, at most ¥500.00.
TWO_AND_A_HALF_PERCENT = ServiceFeePolicy(rate_bps=250, cap=cny(50_000))


@pytest.mark.parametrize(
    ("price_minor", "fee_minor"),
    [
        (0, 0),
        (1, 0),  # 0.025 fen rounds down
        (19, 0),  # 0.475 fen rounds down
        (20, 1),  # exactly 0.5 fen rounds half up
        (21, 1),
        (59, 1),  # 1.475
        (60, 2),  # 1.5 → 2
        (10_000, 250),
        (2_000_000, 50_000),  # exactly the cap
        (2_000_020, 50_000),  # 50 000.5 would round to 50 001: held at the cap
        (10**12, 50_000),
    ],
)
def test_fee_rounds_half_up_to_the_fen_and_stops_at_the_cap(
    price_minor: int, fee_minor: int
) -> None:
    assert service_fee(cny(price_minor), TWO_AND_A_HALF_PERCENT) == cny(fee_minor)


def test_minimum_applies_but_never_above_the_price() -> None:
    policy = ServiceFeePolicy(rate_bps=100, cap=cny(10_000), minimum=cny(200))
    assert service_fee(cny(5_000), policy) == cny(200)  # 1 % is 50; minimum 200
    assert service_fee(cny(50_000), policy) == cny(500)  # above the minimum
    assert service_fee(cny(150), policy) == cny(150)  # minimum exceeds price: capped at price
    assert service_fee(cny(0), policy) == cny(0)


def test_full_rate_takes_the_whole_price_up_to_the_cap() -> None:
    policy = ServiceFeePolicy(rate_bps=10_000, cap=cny(1_000))
    assert service_fee(cny(999), policy) == cny(999)
    assert service_fee(cny(5_000), policy) == cny(1_000)


def test_fee_on_the_largest_storable_price() -> None:
    policy = ServiceFeePolicy(rate_bps=10_000, cap=cny(INT64_MAX))
    assert service_fee(cny(INT64_MAX), policy) == cny(INT64_MAX)


def test_split_gives_the_operator_the_rest() -> None:
    result = split(cny(10_000), TWO_AND_A_HALF_PERCENT)
    assert result == Split(gross=cny(10_000), fee=cny(250), operator_revenue=cny(9_750))


def test_fee_refuses_negative_prices_and_other_currencies() -> None:
    with pytest.raises(InvalidMoneyError) as raised:
        service_fee(cny(-1), TWO_AND_A_HALF_PERCENT)
    assert raised.value.field == "price_minor"
    with pytest.raises(CurrencyMismatchError):
        service_fee(Money(100, "USD"), TWO_AND_A_HALF_PERCENT)


@pytest.mark.parametrize(
    ("rate_bps", "cap_minor", "minimum_minor", "field"),
    [
        (-1, 100, None, "rate_bps"),
        (10_001, 100, None, "rate_bps"),
        (True, 100, None, "rate_bps"),
        (100, -1, None, "cap"),
        (100, 100, -1, "minimum"),
        (100, 100, 101, "minimum"),
    ],
)
def test_malformed_policies_are_refused(
    rate_bps: int, cap_minor: int, minimum_minor: int | None, field: str
) -> None:
    minimum = None if minimum_minor is None else cny(minimum_minor)
    with pytest.raises((InvalidPolicyError, InvalidMoneyError)) as raised:
        ServiceFeePolicy(rate_bps, cny(cap_minor), minimum)
    assert raised.value.field == field


def test_policy_minimum_must_share_the_cap_currency() -> None:
    with pytest.raises(CurrencyMismatchError):
        ServiceFeePolicy(100, cny(100), Money(1, "USD"))


def test_split_must_add_up() -> None:
    with pytest.raises(InvalidMoneyError):
        Split(cny(100), cny(10), cny(89))
    with pytest.raises(InvalidMoneyError):
        Split(cny(100), cny(-10), cny(110))


def test_partial_refunds_return_exactly_the_settled_fee_in_the_end() -> None:
    settled = split(cny(1_001), ServiceFeePolicy(rate_bps=333, cap=cny(10_000)))
    assert settled.fee == cny(33)  # 33.3333 → 33
    first = refund_portion(settled, cny(500))
    assert first == Split(cny(500), cny(16), cny(484))  # 16.48 → 16
    remaining = settled - first
    second = refund_portion(remaining, cny(501))
    assert second.fee + first.fee == settled.fee
    assert second.operator_revenue + first.operator_revenue == settled.operator_revenue
    with pytest.raises(InvalidMoneyError):
        refund_portion(remaining, cny(502))
    with pytest.raises(InvalidMoneyError):
        refund_portion(remaining, cny(0))


def test_price_order_multiplies_by_a_positive_integer_quantity() -> None:
    assert price_order(cny(1_250), 4) == cny(5_000)
    assert price_order(cny(0), 10) == cny(0)


@pytest.mark.parametrize("quantity", [0, -1, True, 1.0, "2"])
def test_price_order_refuses_bad_quantities(quantity: object) -> None:
    with pytest.raises(InvalidQuantityError) as raised:
        price_order(cny(100), quantity)  # type: ignore[arg-type]
    assert raised.value.field == "quantity"


def test_price_order_refuses_totals_beyond_bigint() -> None:
    assert price_order(cny(INT64_MAX), 1) == cny(INT64_MAX)
    assert price_order(cny(INT64_MAX // 3), 3) == cny(INT64_MAX // 3 * 3)
    with pytest.raises(AmountOutOfRangeError) as raised:
        price_order(cny(INT64_MAX // 2 + 1), 2)
    assert raised.value.field == "quantity"
