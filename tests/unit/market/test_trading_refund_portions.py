"""Partial refunds' shares, as a property: any sequence of refunds of any split gives back fee
and operator shares that sum exactly to each amount, never keep more fee than was charged (so
never above its cap), and return the whole split when everything is refunded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from market.trading.refund_records import OrderRefund, remaining
from settlement.fees import ServiceFeePolicy, Split, refund_portion, split
from settlement.money import Money

ORDER = uuid.uuid4()


def _refund(sequence: int, portion: Split) -> OrderRefund:
    return OrderRefund(order_id=ORDER, sequence=sequence, portion=portion,
                       after_settlement=True, provider_refund_id=None, reason="r",
                       refunded_by="staff:x", leaf_index=sequence,
                       refunded_at=datetime.now(UTC))


@given(price=st.integers(1, 10**9), rate_bps=st.integers(0, 10_000),
       cap=st.integers(0, 10**7), cuts=st.lists(st.integers(1, 10**9), max_size=8))
def test_refund_shares_are_exact_and_end_at_zero(price: int, rate_bps: int, cap: int,
                                                 cuts: list[int]) -> None:
    original = split(Money(price, "CNY"), ServiceFeePolicy(rate_bps, Money(cap, "CNY")))
    refunds: list[OrderRefund] = []
    for cut in [*cuts, None]:
        left = remaining(original, refunds)
        if not left.gross.is_positive:
            break
        amount = left.gross if cut is None else Money(min(cut, left.gross.amount_minor), "CNY")
        portion = refund_portion(left, amount)
        assert portion.fee + portion.operator_revenue == amount
        assert Money(0, "CNY") <= portion.fee <= left.fee
        assert portion.operator_revenue <= left.operator_revenue
        refunds.append(_refund(len(refunds) + 1, portion))
        kept = remaining(original, refunds)
        assert kept.fee <= Money(cap, "CNY")
    assert remaining(original, refunds).gross == Money(0, "CNY")
    assert sum(r.portion.fee.amount_minor for r in refunds) == original.fee.amount_minor
