"""Staff refund a paid order, in part or in full, possibly several times, never more than was
paid in total.

Each refund gives back a portion of what is still settled (``refund_records.remaining``): the
fee share is ``remaining fee × amount ÷ remaining price`` in integer fen, rounded half up
(``settlement.fees.refund_portion``), and the operator share is the rest of the amount, so the
two shares always sum exactly to the amount. Taking each portion from what remains, rather
than from the original price, means the last refund returns exactly what is left and rounding
never accumulates; the fee kept is never more than the fee charged, so never above its cap.

One refund, in order:

1. the provider gives the money back first, outside any transaction, under the key
   ``order:<id>:refund:<n>`` (n counts the order's refunds), so a retry after a crash never
   refunds twice and a different refund retried under the same number is refused by the
   provider;
2. one transaction, under the order's row lock: the journal entry (``refund`` out of the
   buyer's held money before settlement, ``settled_refund`` from the operator's payable and the
   exchange's fee after it; for a Stripe destination charge also the reversal of the transfer of
   the refunded operator share, as Stripe's reverse_transfer makes it), the operator's revenue
   reserved under its ceiling released by the refunded operator share, the refund row and its
   ledger record; and when nothing is left, the access grant revoked and the order moved to
   refunded. A partial refund leaves access alone.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ledger.log import append_record
from market.accounts.model import Principal
from market.errors import ConflictError, InvalidInputError
from market.trading import delivery, refund_records
from market.trading.order_tables import connection
from market.trading.orders import (
    REFUNDABLE,
    Order,
    OrderConfig,
    OrderState,
    _actor,
    _locked,
    _move,
    get,
    settlement_rules,
)
from market.trading.refund_records import OrderRefund
from settlement import caps as settlement_caps
from settlement import caps_service, journal_store
from settlement.fees import Split, refund_portion
from settlement.journal import Account, connect_transfer_reversal, refund, settled_refund
from settlement.money import Money

LEDGER_KIND = "trading.order_refund"


def refund_key(order: Order, sequence: int) -> str:
    return f"{order.reference}:refund:{sequence}"


def _require_refundable(order: Order) -> None:
    if order.state not in REFUNDABLE:
        raise ConflictError(f"an order that is {order.state.value} cannot be refunded",
                            field="state")


def _amount(remaining: Split, amount_minor: int | None) -> Money:
    """The amount asked for, or everything still refundable when none is given."""
    if amount_minor is None:
        return remaining.gross
    if isinstance(amount_minor, bool) or amount_minor < 1 \
            or amount_minor > remaining.gross.amount_minor:
        raise InvalidInputError(
            f"amount_minor must be from 1 to the {remaining.gross.amount_minor} still "
            "refundable", field="amount_minor")
    return Money(amount_minor, remaining.gross.currency)


async def refund_order(staff: Principal, order_id: uuid.UUID, config: OrderConfig, *,
                       reason: str, now: datetime, amount_minor: int | None = None) -> Order:
    """Refund ``amount_minor`` of a paid order, or all that is left of it when None."""
    order = await get(staff, order_id)
    if order.state is OrderState.REFUNDED and amount_minor is None:
        return order
    _require_refundable(order)
    earlier = await refund_records.refunds_of(order.id)
    remaining = refund_records.remaining(order.split, earlier)
    amount = _amount(remaining, amount_minor)
    sequence = len(earlier) + 1
    key = refund_key(order, sequence)
    provider_refund_id = None
    if amount.is_positive and order.payment_reference is not None:
        provider = next(p for p in config.providers.values() if p.name == order.payment_provider)
        async with settlement_rules():
            sent = await provider.refund(order.payment_reference, amount, idempotency_key=key,
                                         reason=reason)
        provider_refund_id = sent.provider_refund_id
    async with connection() as conn:
        order = await _locked(conn, order_id) or order
        if order.state is OrderState.REFUNDED:
            return order
        _require_refundable(order)
        if len(await refund_records.refunds_of(order.id)) >= sequence:
            # A concurrent call with the same refund finished it first.
            return order
        left = remaining
        if amount.is_positive:
            left = remaining - await _record(
                staff, order, sequence=sequence, key=key, amount=amount, remaining=remaining,
                provider_refund_id=provider_refund_id, reason=reason, now=now)
        if left.gross.is_positive:
            return order
        detail = f"refunded: {reason}"[:1000]
        await delivery.revoke_for_order(order.id, reason=detail, now=now)
        return await _move(conn, order, OrderState.REFUNDED, actor=_actor(staff),
                           detail=detail, now=now)


async def _record(staff: Principal, order: Order, *, sequence: int, key: str, amount: Money,
                  remaining: Split, provider_refund_id: str | None, reason: str,
                  now: datetime) -> Split:
    """Inside the order's transaction: journal, ceiling, refund row and ledger record; returns
    the portion refunded."""
    portion = refund_portion(remaining, amount)
    after_settlement = order.state is OrderState.COMPLETED
    assert order.payment_provider is not None  # a positive amount was paid through one
    async with settlement_rules():
        entry = settled_refund(
            idempotency_key=key, reference=order.reference,
            operator_org_id=str(order.operator_org_id), provider=order.payment_provider,
            portion=portion) if after_settlement else refund(
            idempotency_key=key, reference=order.reference,
            buyer_org_id=str(order.buyer_org_id), provider=order.payment_provider,
            amount=amount)
        await journal_store.post(entry, actor=_actor(staff))
        if order.payment_destination is not None and portion.operator_revenue.is_positive:
            # Stripe reversed the transfer of the refunded operator share (reverse_transfer).
            await journal_store.post(connect_transfer_reversal(
                idempotency_key=f"{key}:transfer-reversal", reference=order.reference,
                provider=order.payment_provider,
                returned_from=Account.operator_payable(str(order.operator_org_id))
                if after_settlement else Account.connect_transferred(order.payment_destination),
                amount=portion.operator_revenue), actor=_actor(staff))
        if order.revenue_period is not None and portion.operator_revenue.is_positive:
            await caps_service.release_revenue(
                str(order.operator_org_id), settlement_caps.RevenuePeriod(order.revenue_period),
                portion.operator_revenue)
    leaf = await append_record(
        LEDGER_KIND, actor=_actor(staff), subject=f"order_refund:{order.id}:{sequence}",
        payload={
            "order_id": str(order.id), "sequence": sequence, "currency": amount.currency,
            "amount_minor": str(amount.amount_minor), "fee_minor": str(portion.fee.amount_minor),
            "operator_revenue_minor": str(portion.operator_revenue.amount_minor),
            "after_settlement": after_settlement, "journal_key": key,
            "provider_refund_id": provider_refund_id, "reason": reason,
            "remaining_minor": str((remaining.gross - amount).amount_minor),
        },
        recorded_at=now)
    await refund_records.insert(OrderRefund(
        order_id=order.id, sequence=sequence, portion=portion,
        after_settlement=after_settlement, provider_refund_id=provider_refund_id,
        reason=reason, refunded_by=_actor(staff), leaf_index=leaf.leaf_index, refunded_at=now))
    return portion
