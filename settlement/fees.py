"""The exchange's service fee, the split of a price between exchange and operator, order pricing.

Rounding rule: the proportional fee is rounded half up to the minor unit (四舍五入 to the fen,
the customary rule for RMB amounts), computed in integers as ``(price × bps + 5000) // 10000``.
Then the minimum applies, then the cap, then the price: the fee is never above its cap and never
above the price, so the operator's share ``price − fee`` is never negative.
"""

from __future__ import annotations

from dataclasses import dataclass

from settlement.errors import (
    AmountOutOfRangeError,
    InvalidMoneyError,
    InvalidPolicyError,
    InvalidQuantityError,
)
from settlement.money import INT64_MAX, Money

BASIS_POINTS_PER_WHOLE = 10_000


def _round_half_up_ratio(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for a non-negative numerator."""
    return (2 * numerator + denominator) // (2 * denominator)


def _require_not_negative(amount: Money, *, field: str) -> None:
    if amount.is_negative:
        raise InvalidMoneyError(f"{field} must not be negative", field=field)


@dataclass(frozen=True, slots=True)
class ServiceFeePolicy:
    """The exchange's fee: ``rate_bps`` of the price, at least ``minimum``, at most ``cap``."""

    rate_bps: int
    cap: Money
    minimum: Money | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.rate_bps, bool)
            or not isinstance(self.rate_bps, int)
            or not 0 <= self.rate_bps <= BASIS_POINTS_PER_WHOLE
        ):
            raise InvalidPolicyError(
                f"rate_bps must be an integer from 0 to {BASIS_POINTS_PER_WHOLE}",
                field="rate_bps",
            )
        _require_not_negative(self.cap, field="cap")
        if self.minimum is not None:
            _require_not_negative(self.minimum, field="minimum")
            self.minimum.require_same_currency(self.cap, field="minimum")
            if self.minimum > self.cap:
                raise InvalidPolicyError("minimum must not exceed the cap", field="minimum")

    @property
    def currency(self) -> str:
        return self.cap.currency


def service_fee(price: Money, policy: ServiceFeePolicy) -> Money:
    """The exchange's service fee on ``price`` (rounding rule in the module docstring)."""
    _require_not_negative(price, field="price_minor")
    price.require_same_currency(policy.cap)
    fee = Money(
        _round_half_up_ratio(price.amount_minor * policy.rate_bps, BASIS_POINTS_PER_WHOLE),
        price.currency,
    )
    if policy.minimum is not None:
        fee = max(fee, policy.minimum)
    return min(fee, policy.cap, price)


@dataclass(frozen=True, slots=True)
class Split:
    """A price divided between the exchange's fee and the operator's revenue."""

    gross: Money
    fee: Money
    operator_revenue: Money

    def __post_init__(self) -> None:
        _require_not_negative(self.fee, field="fee")
        _require_not_negative(self.operator_revenue, field="operator_revenue")
        if self.fee + self.operator_revenue != self.gross:
            raise InvalidMoneyError("fee + operator_revenue must equal gross", field="gross")

    def __sub__(self, other: Split) -> Split:
        """What stays settled after ``other`` (a refunded portion) is taken out."""
        return Split(
            self.gross - other.gross,
            self.fee - other.fee,
            self.operator_revenue - other.operator_revenue,
        )


def split(price: Money, policy: ServiceFeePolicy) -> Split:
    fee = service_fee(price, policy)
    return Split(gross=price, fee=fee, operator_revenue=price - fee)


def refund_portion(remaining: Split, refund_amount: Money) -> Split:
    """The share of fee and operator revenue given back when refunding part of a settled price.

    ``remaining`` is what is still settled (the original split minus portions already refunded),
    so that refunding the rest returns exactly the rest and rounding never accumulates. The fee
    share is proportional, rounded half up like the fee itself.
    """
    refund_amount.require_same_currency(remaining.gross, field="amount_minor")
    if not refund_amount.is_positive or refund_amount > remaining.gross:
        raise InvalidMoneyError(
            f"refund must be positive and at most the {remaining.gross.amount_minor} still "
            f"settled, got {refund_amount.amount_minor}",
            field="amount_minor",
        )
    fee_returned = Money(
        _round_half_up_ratio(
            remaining.fee.amount_minor * refund_amount.amount_minor,
            remaining.gross.amount_minor,
        ),
        refund_amount.currency,
    )
    return Split(refund_amount, fee_returned, refund_amount - fee_returned)


def price_order(unit_price: Money, quantity: int) -> Money:
    """``unit_price × quantity``; the quantity is a positive integer and the total fits a bigint."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise InvalidQuantityError(
            f"quantity must be a positive integer, got {quantity!r}", field="quantity"
        )
    _require_not_negative(unit_price, field="unit_price_minor")
    if unit_price.amount_minor * quantity > INT64_MAX:
        raise AmountOutOfRangeError(
            f"{quantity} × {unit_price.amount_minor} exceeds the largest storable amount",
            field="quantity",
        )
    return unit_price * quantity
