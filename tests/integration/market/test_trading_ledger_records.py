"""Reconciliation of the trading records with their leaves: a realistic run of orders (bank
transfer to completion with a partial refund, refunded in full, free, cancelled, expired),
clearances, free-use eligibility, a bank payout and connected accounts reports nothing; rows
tampered in SQL are each reported with what and where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import pytest

from ledger.reconcile import DiscrepancyKind
from market.accounts.model import Role
from market.trading import clearances, orders, payouts, refunds
from settlement import eligibility_store
from settlement.caps import Eligibility
from settlement.caps import Purpose as CapPurpose
from tests.e2e.recording_stripe_setup import recording_stripe
from tests.factories import make_account
from tests.integration.market.orders_setup import (
    build_market,
    config,
    now,
    pay_and_deliver,
    principal,
    today,
)
from tests.integration.market.reconcile_setup import (
    findings,
    run,
    tamper,
    unchecked_kinds,
)
from tests.integration.settlement.stripe_double import RecordingStripe

__all__ = ["recording_stripe"]  # the fixture, used by name
CHANGED = DiscrepancyKind.RECORD_CHANGED
MISSING = DiscrepancyKind.RECORD_MISSING


@dataclass(frozen=True)
class Trades:
    completed: orders.Order  # paid by bank transfer, settled, then refunded in part
    refunded: orders.Order  # refunded in two parts before settlement
    free: orders.Order
    cancelled: orders.Order
    expired: orders.Order
    revoked_clearance: clearances.Clearance
    clearance: clearances.Clearance
    eligibility_id: UUID
    payout_reference: str
    connected_operator: UUID


async def trade() -> Trades:
    market = await build_market()
    cfg = config()
    buyer, staff = principal(market.buyer), principal(market.staff)
    buyer_org = market.buyer.organisation.id

    revoked_clearance = await clearances.grant(
        staff, buyer_org, "important", valid_from=today(), valid_to=today() + timedelta(days=30),
        evidence="数据安全评估报告 2026-17", today=today(), now=now())
    await clearances.revoke(staff, revoked_clearance.id, reason="评估结论撤回", now=now())
    clearance = await clearances.grant(
        staff, market.other_buyer.organisation.id, "important", valid_from=today(),
        valid_to=today() + timedelta(days=90), evidence="数据安全承诺书", today=today(),
        now=now())
    eligibility = await eligibility_store.grant(Eligibility(
        buyer_org_id=str(buyer_org), purposes=frozenset({CapPurpose.PUBLIC_WELFARE}),
        valid_from=today(), valid_to=today() + timedelta(days=365), evidence="民政局公益认定"),
        granted_by=f"staff:{market.staff.organisation.id}")

    placed = (await orders.place(buyer, market.request(), "completed", cfg, now=now())).order
    await pay_and_deliver(placed, cfg)
    completed = await orders.accept(buyer, placed.id, now=now())
    completed = await refunds.refund_order(staff, placed.id, cfg, reason="部分数据缺失",
                                           now=now(), amount_minor=1000)
    assert completed.state is orders.OrderState.COMPLETED

    placed = (await orders.place(buyer, market.request(quantity=4), "refunded", cfg,
                                 now=now())).order
    await pay_and_deliver(placed, cfg)
    await refunds.refund_order(staff, placed.id, cfg, reason="接口不可用", now=now(),
                               amount_minor=500)
    refunded = await refunds.refund_order(staff, placed.id, cfg, reason="接口不可用", now=now())
    assert refunded.state is orders.OrderState.REFUNDED

    free = (await orders.place(buyer, market.request(purpose="public_welfare"), "free", cfg,
                               now=now())).order
    assert free.state is orders.OrderState.DELIVERED
    free = await orders.accept(buyer, free.id, now=now())

    placed = (await orders.place(buyer, market.request(), "cancelled", cfg, now=now())).order
    cancelled = await orders.cancel(buyer, placed.id, now=now())
    expiring = (await orders.place(buyer, market.request(), "expired", cfg, now=now())).order
    assert await orders.expire_unpaid(cfg, now=now() + cfg.unpaid_ttl + timedelta(seconds=1)) \
        == [expiring.id]
    expired = await orders.get(staff, expiring.id)

    payout = await payouts.instruct(staff, market.operator.organisation.id, amount_minor=None,
                                    currency="CNY", period=None, idempotency_key="payout-1",
                                    today=today())
    await payouts.mark_sent(staff, payout.reference, bank_transaction_ref="BANK-0001",
                            sent_on=today())
    connected = await make_account(Role.OPERATOR)
    for account_id in ("acct_1First", "acct_2Second"):  # replaced: the first is history
        await orders.record_connected_account(staff, connected.organisation.id, account_id,
                                              now=now())
    return Trades(completed=completed, refunded=refunded, free=free, cancelled=cancelled,
                  expired=expired, revoked_clearance=revoked_clearance, clearance=clearance,
                  eligibility_id=eligibility.id, payout_reference=payout.reference,
                  connected_operator=connected.organisation.id)


async def test_a_realistic_trading_history_reconciles_clean(db: str) -> None:
    trades = await trade()
    report = await run()
    assert report.discrepancies == []
    assert await unchecked_kinds() == set()
    history = await orders.history(trades.completed.id)
    assert [step[1] for step in history] == ["awaiting_payment", "paid", "delivered",
                                             "accepted", "completed"]


async def test_a_card_order_to_a_connected_account_reconciles_clean(
        db: str, recording_stripe: RecordingStripe) -> None:
    market = await build_market()
    cfg = config(stripe_api_key="sk_test_recording", stripe_api_base=recording_stripe.url)
    buyer, staff = principal(market.buyer), principal(market.staff)
    await orders.record_connected_account(staff, market.operator.organisation.id,
                                          "acct_1Operator", now=now())
    placed = (await orders.place(buyer, market.request(payment_method="card"), "card", cfg,
                                 now=now())).order
    assert placed.payment_destination == "acct_1Operator"
    assert placed.payment_reference is not None
    recording_stripe.succeed(placed.payment_reference)
    assert await orders.payment_confirmed(str(placed.id), cfg, actor="stripe:webhook",
                                          now=now()) is not None
    await orders.accept(buyer, placed.id, now=now())
    refunded = await refunds.refund_order(staff, placed.id, cfg, reason="部分数据缺失",
                                          now=now(), amount_minor=1500)
    assert refunded.state is orders.OrderState.COMPLETED
    assert recording_stripe.of("POST", "/v1/refunds")
    assert (await run()).discrepancies == []


async def _event_leaf(order_id: UUID, to_state: str) -> int:
    return next(step[3] for step in await orders.history(order_id) if step[1] == to_state)


async def test_an_order_changed_after_logging_is_reported_on_every_leaf(db: str) -> None:
    trades = await trade()
    order = trades.completed
    await tamper(db, "UPDATE trading_orders SET gross_minor = gross_minor * 10, "
                     "operator_revenue_minor = gross_minor * 10 - fee_minor WHERE id = $1",
                 order.id)
    report = await run()
    # Every leaf of the order logged its price; its refund logged what was left of it.
    assert findings(report) == [(CHANGED, f"orders order:{order.id}")] * 5 + [
        (CHANGED, f"order_refunds order_refund:{order.id}:1")]
    assert all("payload.gross_minor" in item.detail for item in report.discrepancies[:5])
    assert report.discrepancies[5].detail.endswith("in payload.remaining_minor")


async def test_an_order_state_changed_after_logging_is_reported_on_its_newest_leaf(
        db: str) -> None:
    trades = await trade()
    order = trades.cancelled
    await tamper(db, "UPDATE trading_orders SET state = 'paid' WHERE id = $1", order.id)
    report = await run()
    assert findings(report) == [(CHANGED, f"orders order:{order.id}")]
    newest = await _event_leaf(order.id, "cancelled")
    assert report.discrepancies[0].detail == (
        f"the database record differs from leaf {newest} in payload.to_state")


async def test_an_order_event_pointing_at_another_leaf_is_reported(db: str) -> None:
    trades = await trade()
    order = trades.free
    paid = await _event_leaf(order.id, "paid")
    other = await _event_leaf(trades.expired.id, "expired")
    await tamper(db, "UPDATE trading_order_events SET leaf_index = $2 "
                     "WHERE order_id = $1 AND to_state = 'paid'", order.id, other)
    report = await run()
    assert findings(report) == [(CHANGED, f"orders order:{order.id}"),
                                (MISSING, f"orders order:{order.id}")]
    assert report.discrepancies[0].detail == (
        f"the database names leaf {other}, which records order:{trades.expired.id}")
    assert report.discrepancies[1].detail.startswith(f"leaf {paid} records it")


async def test_a_deleted_order_event_leaves_its_leaf_unclaimed(db: str) -> None:
    trades = await trade()
    order = trades.refunded
    delivered = await _event_leaf(order.id, "delivered")
    await tamper(db, "DELETE FROM trading_order_events WHERE leaf_index = $1", delivered)
    report = await run()
    assert findings(report) == [(MISSING, f"orders order:{order.id}")]
    assert report.discrepancies[0].detail.startswith(f"leaf {delivered} records it")


@pytest.mark.parametrize(("statement", "record", "detail"), [
    # The clearable grade is pinned by a CHECK; what a forger would stretch is the term.
    ("UPDATE trading_buyer_clearances SET valid_to = valid_to + 365 WHERE id = $1",
     "clearance", "payload.valid_to"),
    ("UPDATE trading_buyer_clearances SET revocation_reason = '误撤' WHERE id = $1",
     "revoked_clearance", "payload.reason"),
    ("UPDATE operator_payouts SET amount_minor = amount_minor + 100000 WHERE reference = $1",
     "payout", "payload.amount_minor"),
    ("UPDATE operator_payouts SET bank_transaction_ref = 'BANK-9999' WHERE reference = $1",
     "payout", "payload.bank_transaction_ref"),
    (("UPDATE trading_order_refunds SET amount_minor = 2000, "
      "operator_revenue_minor = 2000 - fee_minor WHERE order_id = $1"),
     "refund", "payload.amount_minor"),
    ("UPDATE free_use_eligibilities SET valid_to = valid_to + 3650 WHERE id = $1",
     "eligibility", "payload.valid_to"),
])
async def test_guarded_rows_changed_after_logging_are_reported(
        db: str, statement: str, record: str, detail: str) -> None:
    trades = await trade()
    # Each tampered row by its key, and where reconciliation must say it is.
    rows: dict[str, tuple[object, str]] = {
        "clearance": (trades.clearance.id,
                      f"buyer_clearances buyer_clearance:{trades.clearance.id}"),
        "revoked_clearance": (
            trades.revoked_clearance.id,
            f"buyer_clearances buyer_clearance:{trades.revoked_clearance.id}"),
        "payout": (trades.payout_reference, f"payouts payout:{trades.payout_reference}"),
        "refund": (trades.completed.id, f"order_refunds order_refund:{trades.completed.id}:1"),
        "eligibility": (trades.eligibility_id,
                        f"eligibilities eligibility:{trades.eligibility_id}")}
    key, where = rows[record]
    await tamper(db, statement, key, triggers=False)
    report = await run()
    assert findings(report) == [(CHANGED, where)]
    assert detail in report.discrepancies[0].detail


async def test_a_connected_account_pointed_elsewhere_is_reported(db: str) -> None:
    trades = await trade()
    await tamper(db, "UPDATE trading_connected_accounts SET account_id = 'acct_3Forged' "
                     "WHERE organisation_id = $1", trades.connected_operator)
    report = await run()
    where = f"connected_accounts operator:{trades.connected_operator}"
    # The newest leaf of the operator, and the one its row names, are the same leaf.
    assert findings(report) == [(CHANGED, where), (CHANGED, where)]
    assert all("payload.account_id" in item.detail for item in report.discrepancies)
