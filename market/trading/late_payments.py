"""Card money that arrives for an order already cancelled or expired (the buyer's browser
confirmed the PaymentIntent after the order ended): it is never applied to the order. The
webhook records it like any payment (the attempt succeeds and the journal credits the buyer,
``settlement.payments.webhooks``); this use case then refunds it in full, automatically,
under a key per PaymentIntent, and posts the refund out of the buyer's credit. A crash between
the two is caught by the job, which sweeps every such payment not yet refunded.

Bank transfers need staff to send the money back, so late bank money waits as the buyer's
credit on the closed invoice (``settlement.payments.bank_transfer.close_invoice``) until staff
refund it.
"""

from __future__ import annotations

import uuid

from market.trading.order_tables import connection
from market.trading.orders import OrderConfig, OrderState, PaymentMethod, settlement_rules
from settlement import journal_store
from settlement.journal import refund
from settlement.payments import attempts
from settlement.payments.provider import PaymentStatus
from settlement.payments.stripe_provider import PROVIDER_NAME as STRIPE

ENDED = (OrderState.CANCELLED.value, OrderState.EXPIRED.value)
REASON = "paid after the order was cancelled or had expired"


def unapplied_refund_key(provider_payment_id: str) -> str:
    return f"stripe:{provider_payment_id}:unapplied-refund"


async def refund_unapplied_card_payments(order_id: uuid.UUID, config: OrderConfig, *,
                                         actor: str) -> int:
    """Refund every succeeded card payment of an ended order not refunded yet; returns how many
    were refunded now (none for an order that is not cancelled or expired)."""
    provider = config.providers.get(PaymentMethod.CARD)
    async with connection() as conn:
        order = await conn.fetchrow(
            "SELECT state, buyer_org_id FROM trading_orders WHERE id = $1", order_id)
    if provider is None or order is None or order["state"] not in ENDED:
        return 0
    refunded = 0
    for attempt in await attempts.attempts_for_order(str(order_id)):
        if (attempt.provider != provider.name or attempt.status is not PaymentStatus.SUCCEEDED
                or attempt.provider_payment_id is None):
            continue
        key = unapplied_refund_key(attempt.provider_payment_id)
        if await journal_store.get(key) is not None:
            continue
        async with settlement_rules():
            # Provider first, outside any transaction; the key makes a retry refund once.
            await provider.refund(attempt.provider_payment_id, attempt.amount,
                                  idempotency_key=key, reason=REASON)
            await journal_store.post(refund(
                idempotency_key=key, reference=f"order:{order_id}",
                buyer_org_id=str(order["buyer_org_id"]), provider=provider.name,
                amount=attempt.amount), actor=actor)
        refunded += 1
    return refunded


async def sweep(config: OrderConfig) -> int:
    """The job: every ended order with a succeeded card payment whose refund is not booked."""
    async with connection() as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT o.id FROM trading_orders o "
            "JOIN payment_attempts a ON a.order_id = o.id::text "
            "WHERE o.state = ANY($1::varchar[]) AND a.status = 'succeeded' AND a.provider = $2 "
            "AND a.provider_payment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
            "journal_transactions t WHERE t.idempotency_key = 'stripe:' || "
            "a.provider_payment_id || ':unapplied-refund') LIMIT 500", list(ENDED), STRIPE)
    total = 0
    for row in rows:
        total += await refund_unapplied_card_payments(row["id"], config,
                                                      actor="system:late-payments")
    return total
