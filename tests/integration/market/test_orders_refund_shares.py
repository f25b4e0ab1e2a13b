"""Partial refunds through the use case on PostgreSQL: pro-rata shares out of the settled
split, the ceiling released by the operator share, access kept until nothing is left, and a
partial refund before acceptance settling only what remains."""

from __future__ import annotations

import pytest

from ledger.tables import LedgerLeaf
from market.errors import ConflictError, InvalidInputError
from market.trading import delivery, orders, refund_records, refunds
from settlement import caps_service, journal_store
from settlement.journal import EXCHANGE_FEES, EXCHANGE_REFUNDS, Account
from settlement.money import Money
from settlement.payments.bank_transfer import BankTransferProvider
from tests.integration.market.orders_setup import (
    Market,
    build_market,
    config,
    now,
    pay_and_deliver,
    principal,
)


async def paid_order(market: Market, cfg: orders.OrderConfig) -> orders.Order:
    """A 5,000 fen order (fee 250 at 5%), paid by bank transfer and delivered."""
    placed = await orders.place(principal(market.buyer), market.request(), "k", cfg, now=now())
    return await pay_and_deliver(placed.order, cfg)


async def committed(market: Market) -> Money:
    status = await caps_service.ceiling_status(str(market.operator.organisation.id),
                                               market.period)
    return status.committed


async def test_partial_refunds_of_a_settled_order_split_pro_rata(db: str) -> None:
    market = await build_market()
    cfg = config(service_fee_bps=500, service_fee_cap_minor=600)
    staff = principal(market.staff)
    order = await paid_order(market, cfg)
    await orders.accept(principal(market.buyer), order.id, now=now())
    payable = Account.operator_payable(str(market.operator.organisation.id))
    assert await committed(market) == Money(4750, "CNY")

    first = await refunds.refund_order(staff, order.id, cfg, reason="部分数据缺失",
                                       amount_minor=1001, now=now())
    assert first.state is orders.OrderState.COMPLETED
    [refund] = await refund_records.refunds_of(order.id)
    # 250 × 1001 / 5000 = 50.05, rounded half up to 50; the operator gives back the rest.
    assert (refund.portion.fee, refund.portion.operator_revenue) == (
        Money(50, "CNY"), Money(951, "CNY"))
    assert refund.after_settlement
    assert await journal_store.balance(payable, "CNY") == -4750 + 951
    assert await journal_store.balance(EXCHANGE_REFUNDS, "CNY") == 50
    assert await committed(market) == Money(4750 - 951, "CNY")
    grant = await delivery.grant_for_order(order.id)
    assert grant is not None
    assert grant.revoked_at is None  # a partial refund keeps access
    leaf = await LedgerLeaf.select().where(
        LedgerLeaf.leaf_index == refund.leaf_index).first().run()
    assert leaf is not None
    assert leaf["kind"] == refunds.LEDGER_KIND

    with pytest.raises(InvalidInputError) as too_much:
        await refunds.refund_order(staff, order.id, cfg, reason="超额", amount_minor=4000,
                                   now=now())
    assert too_much.value.field == "amount_minor"

    second = await refunds.refund_order(staff, order.id, cfg, reason="再退", amount_minor=1999,
                                        now=now())
    assert second.state is orders.OrderState.COMPLETED
    last = await refunds.refund_order(staff, order.id, cfg, reason="全部退回", now=now())
    assert last.state is orders.OrderState.REFUNDED
    portions = [r.portion for r in await refund_records.refunds_of(order.id)]
    assert [p.gross.amount_minor for p in portions] == [1001, 1999, 2000]
    # The shares add up exactly to the original split: nothing is left anywhere.
    assert sum(p.fee.amount_minor for p in portions) == 250
    assert sum(p.operator_revenue.amount_minor for p in portions) == 4750
    assert await journal_store.balance(payable, "CNY") == 0
    assert await journal_store.balance(EXCHANGE_REFUNDS, "CNY") == 250
    assert await journal_store.balance(Account.clearing("bank_transfer"), "CNY") == 0
    assert await journal_store.unbalanced_currencies() == {}
    assert await committed(market) == Money(0, "CNY")
    revoked = await delivery.grant_for_order(order.id)
    assert revoked is not None
    assert revoked.revoked_at is not None
    with pytest.raises(ConflictError):
        await refunds.refund_order(staff, order.id, cfg, reason="再退", amount_minor=1,
                                   now=now())


async def test_a_partial_refund_before_acceptance_settles_only_the_rest(db: str) -> None:
    market = await build_market()
    cfg = config(service_fee_bps=500, service_fee_cap_minor=600)
    order = await paid_order(market, cfg)
    buyer = Account.buyer(str(market.buyer.organisation.id))
    await refunds.refund_order(principal(market.staff), order.id, cfg, reason="少交付一部分",
                               amount_minor=1000, now=now())
    [refund] = await refund_records.refunds_of(order.id)
    assert not refund.after_settlement
    assert await journal_store.balance(buyer, "CNY") == -4000
    assert await committed(market) == Money(4750 - 950, "CNY")

    completed = await orders.accept(principal(market.buyer), order.id, now=now())
    assert completed.state is orders.OrderState.COMPLETED
    assert await journal_store.balance(buyer, "CNY") == 0
    assert await journal_store.balance(EXCHANGE_FEES, "CNY") == -200
    assert await journal_store.balance(
        Account.operator_payable(str(market.operator.organisation.id)), "CNY") == -3800
    assert await journal_store.unbalanced_currencies() == {}


async def test_a_retried_refund_is_not_paid_twice(db: str) -> None:
    market = await build_market()
    cfg = config()
    order = await paid_order(market, cfg)
    bank = cfg.providers[orders.PaymentMethod.BANK_TRANSFER]
    assert isinstance(bank, BankTransferProvider)
    assert order.payment_reference is not None
    # The provider call went out under the first refund's key, then the process died.
    await bank.refund(order.payment_reference, Money(700, "CNY"),
                      idempotency_key=refunds.refund_key(order, 1), reason="interrupted")
    with pytest.raises(ConflictError):  # another amount under the same refund number
        await refunds.refund_order(principal(market.staff), order.id, cfg, reason="另一笔",
                                   amount_minor=800, now=now())
    await refunds.refund_order(principal(market.staff), order.id, cfg, reason="interrupted",
                               amount_minor=700, now=now())
    invoice = await bank.invoice(order.payment_reference)
    assert invoice.refunded == Money(700, "CNY")
    assert len(await refund_records.refunds_of(order.id)) == 1
