"""The refunds of an order as stored (DDL: market/piccolo_migrations/
market_2026_11_24t10_00_00_000000.py): each one's amount and the fee and operator shares it
gave back. What is still settled of an order is its split minus its refunds (``remaining``):
acceptance settles that, and the next refund is taken from it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from market.trading.order_tables import connection
from settlement.fees import Split
from settlement.money import Money


@dataclass(frozen=True)
class OrderRefund:
    order_id: uuid.UUID
    sequence: int
    portion: Split
    after_settlement: bool
    provider_refund_id: str | None
    reason: str
    refunded_by: str
    leaf_index: int
    refunded_at: datetime


def _refund(row: Any) -> OrderRefund:
    currency = row["currency"].strip()
    return OrderRefund(
        order_id=row["order_id"], sequence=row["sequence"],
        portion=Split(Money(row["amount_minor"], currency), Money(row["fee_minor"], currency),
                      Money(row["operator_revenue_minor"], currency)),
        after_settlement=row["after_settlement"], provider_refund_id=row["provider_refund_id"],
        reason=row["reason"], refunded_by=row["refunded_by"], leaf_index=row["leaf_index"],
        refunded_at=row["refunded_at"])


async def refunds_of(order_id: uuid.UUID) -> list[OrderRefund]:
    async with connection() as conn:
        rows = await conn.fetch(
            "SELECT * FROM trading_order_refunds WHERE order_id = $1 ORDER BY sequence",
            order_id)
    return [_refund(row) for row in rows]


def remaining(split: Split, refunds: Iterable[OrderRefund]) -> Split:
    """The part of ``split`` not refunded yet."""
    for refund in refunds:
        split = split - refund.portion
    return split


async def remaining_split(order_id: uuid.UUID, split: Split) -> Split:
    return remaining(split, await refunds_of(order_id))


async def insert(refund: OrderRefund) -> None:
    """Inside the refunding transaction, which holds the order's row lock."""
    portion = refund.portion
    async with connection() as conn:
        await conn.execute(
            "INSERT INTO trading_order_refunds (order_id, sequence, currency, amount_minor, "
            "fee_minor, operator_revenue_minor, after_settlement, provider_refund_id, reason, "
            "refunded_by, leaf_index, refunded_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            refund.order_id, refund.sequence, portion.gross.currency,
            portion.gross.amount_minor, portion.fee.amount_minor,
            portion.operator_revenue.amount_minor, refund.after_settlement,
            refund.provider_refund_id, refund.reason, refund.refunded_by, refund.leaf_index,
            refund.refunded_at)
