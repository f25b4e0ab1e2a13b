"""Issue 5 §4: concurrent orders at the last headroom of an operator's ceiling. Exactly as many
succeed as fit, the rest are refused with nothing written, and the committed total never passes
the ceiling."""

from __future__ import annotations

import asyncio

from market.errors import ConflictError
from market.trading import orders
from market.trading.order_tables import OrderRow
from settlement import caps_service
from settlement.money import Money
from settlement.tables import BankInvoiceRow, PaymentAttemptRow
from tests.integration.market.orders_setup import build_market, config, now, principal

CONCURRENT_ORDERS = 120


async def test_concurrent_orders_never_pass_the_ceiling(db: str) -> None:
    # Each order: 1 call at 500 fen, fee 25, operator revenue 475. Ceiling 100,000 with 95,000
    # already committed leaves room for exactly 5,000 // 475 = 10 orders.
    market = await build_market(ceiling_minor=100_000)
    operator_id = str(market.operator.organisation.id)
    assert await caps_service.reserve_revenue(operator_id, market.period, Money(95_000, "CNY"))
    cfg = config()
    buyer = principal(market.buyer)
    engine = OrderRow._meta.db
    # A pool, so 120 transactions share a few connections instead of exhausting the server.
    await engine.start_connection_pool(min_size=1, max_size=12)

    async def attempt(number: int) -> str:
        """"placed", or the field a refusal names."""
        try:
            await orders.place(buyer, market.request(quantity=1), f"race-{number}", cfg,
                               now=now())
        except ConflictError as refused:
            return str(refused.field)
        return "placed"

    try:
        results = await asyncio.gather(*(attempt(n) for n in range(CONCURRENT_ORDERS)))
    finally:
        await engine.close_connection_pool()
    fits = 5_000 // 475
    assert results.count("placed") == fits
    # Every other order was refused for the ceiling, and for nothing else.
    assert results.count("quantity") == CONCURRENT_ORDERS - fits
    assert await OrderRow.count().run() == fits
    # A refused order's placing statement undid its invoice and attempt with it.
    assert await BankInvoiceRow.count().run() == fits
    assert await PaymentAttemptRow.count().run() == fits
    status = await caps_service.ceiling_status(operator_id, market.period)
    assert status.committed == Money(95_000 + fits * 475, "CNY")
    assert status.committed <= status.effective
