"""Reconciliation of the settlement records with their leaves: a clean database reports
nothing; journal postings, fee caps and revenue ceilings tampered in SQL (triggers switched
off, as an attacker with database access would) are each reported with what and where."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from ledger.note import NoteSigner
from ledger.reconcile import DiscrepancyKind, ReconcileOptions, ReconcileReport, reconcile
from settlement import caps_service, journal_store
from settlement.caps import ChargingUnit, FeeCap, Purpose, RevenueCeiling, RevenuePeriod
from settlement.fees import ServiceFeePolicy, split
from settlement.journal import order_payment_received, order_settled, reverse
from settlement.ledger_records import FeeCapRecords, JournalRecords, RevenueCeilingRecords
from settlement.money import Money

SIGNER = NoteSigner.generate("exchange.test/ledger")
OPTIONS = ReconcileOptions(
    verifier=SIGNER.verifier,
    record_sources=[JournalRecords(), FeeCapRecords(), RevenueCeilingRecords()],
)
POLICY = ServiceFeePolicy(rate_bps=500, cap=Money(100_000, "CNY"))
PAID = Purpose.INDUSTRY_DEVELOPMENT


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


async def seed() -> None:
    await journal_store.post(
        order_payment_received(idempotency_key="pay-1", reference="order:1",
                               buyer_org_id="buyer-1", provider="bank_transfer",
                               amount=cny(10_000)), actor="staff:1")
    settled = order_settled(idempotency_key="settle-1", reference="order:1",
                            buyer_org_id="buyer-1", operator_org_id="operator-1",
                            split=split(cny(10_000), POLICY))
    await journal_store.post(settled, actor="buyer:1")
    await journal_store.post(reverse(settled, "settle-1-reversal"), actor="staff:1")
    # Two versions of one cap: the second closes the first the day before it starts.
    for amount, start, reference in ((500, date(2026, 1, 1), "A"), (400, date(2026, 7, 1), "B")):
        await caps_service.approve_fee_cap(
            FeeCap("product-1", PAID, ChargingUnit.PER_CALL, cny(amount), start, None),
            approved_by="regulator:1", approval_reference=reference)
    for approved in (1_000, 600):
        await caps_service.approve_revenue_ceiling(
            RevenueCeiling("operator-1", RevenuePeriod("2026"), cny(approved), cny(0), cny(0)),
            approved_by="regulator:2", approval_reference=f"C{approved}")


async def tamper(database_url: str, *statements: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SET session_replication_role = replica")
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def findings(report: ReconcileReport) -> list[tuple[DiscrepancyKind, str]]:
    return [(item.kind, item.where) for item in report.discrepancies]


async def test_a_clean_settlement_database_reports_nothing(db: str) -> None:
    await seed()
    report = await reconcile(OPTIONS)
    assert report.discrepancies == []


CHANGED = DiscrepancyKind.RECORD_CHANGED
NOT_LOGGED = DiscrepancyKind.RECORD_NOT_LOGGED
MISSING = DiscrepancyKind.RECORD_MISSING


@pytest.mark.parametrize(("statements", "expected"), [
    pytest.param(
        [("UPDATE journal_postings SET amount_minor = amount_minor + 1 WHERE id = "
         "(SELECT min(p.id) FROM journal_postings p JOIN journal_transactions t "
         "ON t.id = p.transaction_id WHERE t.idempotency_key = 'settle-1')")],
        [(CHANGED, "journal journal:settle-1")], id="posting-amount"),
    pytest.param(
        [("UPDATE journal_postings SET account = 'operator:operator-2:payable' WHERE account = "
         "'operator:operator-1:payable' AND transaction_id = (SELECT id FROM "
         "journal_transactions WHERE idempotency_key = 'settle-1')")],
        [(CHANGED, "journal journal:settle-1")], id="posting-account"),
    pytest.param(
        ["UPDATE journal_transactions SET reference = 'order:2' WHERE idempotency_key = 'pay-1'"],
        [(CHANGED, "journal journal:pay-1")], id="transaction-reference"),
    pytest.param(
        [("DELETE FROM journal_postings WHERE transaction_id = (SELECT id FROM "
         "journal_transactions WHERE idempotency_key = 'pay-1')"),
         "DELETE FROM journal_transactions WHERE idempotency_key = 'pay-1'"],
        [(MISSING, "journal journal:pay-1")], id="transaction-deleted"),
    pytest.param(
        [("INSERT INTO journal_transactions (idempotency_key, kind, reference, fingerprint) "
         "VALUES ('forged-1', 'order_payment_received', 'order:9', repeat('0', 64))")],
        [(NOT_LOGGED, "journal journal:forged-1")], id="transaction-never-logged"),
    pytest.param(
        ["UPDATE fee_caps SET cap_minor = 900 WHERE approval_reference = 'B'"],
        [(CHANGED, "fee_caps fee_cap:product-1:industry_development:per_call")],
        id="fee-cap-amount"),
    pytest.param(
        ["UPDATE fee_caps SET effective_to = '2027-12-31' WHERE approval_reference = 'B'"],
        [(CHANGED, "fee_caps fee_cap:product-1:industry_development:per_call")],
        id="fee-cap-end"),
    pytest.param(
        ["UPDATE fee_caps SET approved_by = 'regulator:9' WHERE approval_reference = 'A'"],
        [(CHANGED, "fee_caps fee_cap:product-1:industry_development:per_call")],
        id="fee-cap-approver"),
    pytest.param(
        ["DELETE FROM fee_caps WHERE approval_reference = 'A'"],
        [(MISSING, "fee_caps fee_cap:product-1:industry_development:per_call")],
        id="fee-cap-deleted"),
    pytest.param(
        [("UPDATE revenue_ceilings SET operating_cost_minor = 10000000, approved_minor = 10000000 "
         "WHERE version = 2")],
        [(CHANGED, "revenue_ceilings revenue_ceiling:operator-1:2026")], id="ceiling-amount"),
    pytest.param(
        [("INSERT INTO revenue_ceilings (operator_id, period, version, currency, "
         "operating_cost_minor, permitted_profit_minor, tax_minor, approved_minor, approved_by, "
         "approval_reference) VALUES ('operator-1', '2026', 3, 'CNY', 99999999, 0, 0, 99999999, "
         "'regulator:2', 'forged')")],
        [(NOT_LOGGED, "revenue_ceilings revenue_ceiling:operator-1:2026")],
        id="ceiling-never-logged"),
])
async def test_tampered_settlement_records_are_found(
    db: str, statements: list[str], expected: list[tuple[DiscrepancyKind, str]]
) -> None:
    await seed()
    await tamper(db, *statements)
    report = await reconcile(OPTIONS)
    assert findings(report) == expected
