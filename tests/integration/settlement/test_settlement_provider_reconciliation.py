"""Reconciling the journal against the providers: a clean state reports nothing, and each kind
of tampering (on our side or the provider's) is reported with what and where."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from stripe_double import LocalStripe

from market.database import current_engine
from settlement import journal_store
from settlement.journal import order_payment_received, refund
from settlement.money import Money
from settlement.payments import attempts
from settlement.payments.bank_transfer import BankTransferProvider
from settlement.payments.provider import PaymentRequest
from settlement.payments.stripe_provider import StripeProvider
from settlement.payments.webhooks import PaymentUpdated, handle_stripe_event
from settlement.provider_reconciliation import (
    ClearingMovement,
    Difference,
    DifferenceKind,
    ProviderRecord,
    StripeApiRecords,
    compare,
    reconcile,
)

ZONE = ZoneInfo("Asia/Shanghai")


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=1), now + timedelta(days=1)


async def _differences(stripe: StripeApiRecords | None = None) -> list[Difference]:
    start, end = _window()
    report = await reconcile(start, end, stripe_records_source=stripe)
    return list(report.differences)


async def _tamper(sql: str, *args: object) -> None:
    """Write past the append-only and balance triggers, as someone with the database's
    superuser could: the reconciliation must still see it."""
    async with current_engine().transaction() as transaction:
        await transaction.connection.execute("SET LOCAL session_replication_role = replica")
        await transaction.connection.execute(sql, *args)


async def _bank_order(provider: BankTransferProvider, amount_minor: int,
                      line: str) -> str:
    order_id = f"order-{uuid.uuid4()}"
    payment = await attempts.start_payment(provider, PaymentRequest(
        order_id=order_id, buyer_org_id="buyer-1", amount=Money(amount_minor, "CNY"),
        idempotency_key=attempts.payment_idempotency_key(order_id)))
    await provider.confirm_receipt(payment.provider_payment_id, bank_transaction_ref=line,
                                   amount=Money(amount_minor, "CNY"),
                                   received_on=datetime.now(ZONE).date(), confirmed_by="staff:1")
    assert payment.reference is not None
    return payment.reference


async def test_bank_transfer_differences_are_each_reported(db: str) -> None:
    provider = BankTransferProvider(ZONE)
    reference = await _bank_order(provider, 5_000, "ICBC-1")
    refunded = await _bank_order(provider, 3_000, "ICBC-2")
    invoice = await provider.invoice(refunded)
    await provider.refund(refunded, Money(3_000, "CNY"), idempotency_key="order:r:refund",
                          reason="withdrawn")
    await journal_store.post(refund(
        idempotency_key="order:r:refund", reference=f"order:{invoice.order_id}",
        buyer_org_id="buyer-1", provider="bank_transfer", amount=Money(3_000, "CNY")),
        actor="staff:1")
    assert await _differences() == []
    start, end = _window()
    report = await reconcile(start, end, stripe_records_source=None)
    assert (report.journal_movements, report.provider_records) == (3, 3)
    assert any("Stripe is not configured" in note for note in report.notes)

    # A receipt with no journal posting (written around the service).
    invoice_id = (await provider.invoice(reference)).invoice_id
    await _tamper(
        "INSERT INTO bank_receipts (id, invoice_id, bank_transaction_ref, amount_minor, "
        "currency, received_on, confirmed_by) VALUES ($1, $2, 'ICBC-GHOST', 700, 'CNY', "
        "current_date, 'staff:1')", uuid.uuid4(), invoice_id)
    # A journal posting with no receipt behind it.
    await journal_store.post(order_payment_received(
        idempotency_key="bank-receipt:ICBC-NOWHERE", reference="order:x", buyer_org_id="b",
        provider="bank_transfer", amount=Money(900, "CNY")), actor="staff:1")
    # The bank line's amount changed, and another's currency.
    await _tamper("UPDATE bank_receipts SET amount_minor = 4_999 "
                  "WHERE bank_transaction_ref = 'ICBC-1'")
    await _tamper("UPDATE bank_refunds SET currency = 'USD' "
                  "WHERE idempotency_key = 'order:r:refund'")

    found = {(d.kind, d.match_key): d for d in await _differences()}
    assert set(found) == {
        (DifferenceKind.MISSING_IN_JOURNAL, "bank-receipt:ICBC-GHOST"),
        (DifferenceKind.MISSING_AT_PROVIDER, "bank-receipt:ICBC-NOWHERE"),
        (DifferenceKind.AMOUNT_MISMATCH, "bank-receipt:ICBC-1"),
        (DifferenceKind.CURRENCY_MISMATCH, "order:r:refund"),
    }
    ghost = found[(DifferenceKind.MISSING_IN_JOURNAL, "bank-receipt:ICBC-GHOST")]
    assert (ghost.provider, ghost.provider_id, ghost.provider_amount_minor) == (
        "bank_transfer", "ICBC-GHOST", 700)
    assert reference in ghost.record
    changed = found[(DifferenceKind.AMOUNT_MISMATCH, "bank-receipt:ICBC-1")]
    assert (changed.journal_amount_minor, changed.provider_amount_minor) == (5_000, 4_999)
    assert changed.journal_transactions == ("bank-receipt:ICBC-1",)
    nowhere = found[(DifferenceKind.MISSING_AT_PROVIDER, "bank-receipt:ICBC-NOWHERE")]
    assert (nowhere.journal_amount_minor, nowhere.provider_id) == (900, None)

    # Another period holds none of it.
    report = await reconcile(start - timedelta(days=60), start - timedelta(days=30),
                             stripe_records_source=None)
    assert report.differences == ()


async def _pay_as_the_buyer(provider: StripeProvider, intent_id: str) -> None:
    method = await provider.client.v1.payment_methods.create_async(params={
        "type": "card",
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    })
    await provider.client.v1.payment_intents.update_async(
        intent_id, params={"payment_method": method.id})
    await provider.client.v1.payment_intents.confirm_async(intent_id)


async def _stripe_payment(provider: StripeProvider, amount: Money, *, pay: bool,
                          book: bool) -> tuple[str, str]:
    order_id = str(uuid.uuid4())
    payment = await attempts.start_payment(provider, PaymentRequest(
        order_id=order_id, buyer_org_id="buyer-9", amount=amount,
        idempotency_key=attempts.payment_idempotency_key(order_id)))
    intent_id = payment.provider_payment_id
    if pay:
        await _pay_as_the_buyer(provider, intent_id)
    if book:
        intent: dict[str, Any] = (
            await provider.client.v1.payment_intents.retrieve_async(intent_id)).to_dict()
        outcome = await handle_stripe_event({"id": f"evt_{uuid.uuid4().hex}",
                                             "type": "payment_intent.succeeded",
                                             "data": {"object": intent}})
        assert isinstance(outcome, PaymentUpdated)
    return order_id, intent_id


async def test_stripe_intents_and_refunds_are_reconciled(db: str,
                                                         localstripe: LocalStripe) -> None:
    provider = StripeProvider("sk_test_local", api_base=localstripe.url)
    records = StripeApiRecords(provider)
    booked_order, booked = await _stripe_payment(provider, Money(12_000, "CNY"), pay=True,
                                                 book=True)
    # Refunded at Stripe and in the journal, as the orders use case does it.
    await provider.refund(booked, Money(2_000, "CNY"), idempotency_key="r-1", reason="partial")
    await journal_store.post(refund(
        idempotency_key=f"order:{booked_order}:refund", reference=f"order:{booked_order}",
        buyer_org_id="buyer-9", provider="stripe", amount=Money(2_000, "CNY")), actor="staff:1")
    # An intent never paid and never booked is no difference either.
    await _stripe_payment(provider, Money(500, "CNY"), pay=False, book=False)
    assert await _differences(records) == []

    _, unbooked = await _stripe_payment(provider, Money(3_000, "CNY"), pay=True, book=False)
    _, unpaid = await _stripe_payment(provider, Money(4_000, "CNY"), pay=False, book=False)
    await journal_store.post(order_payment_received(
        idempotency_key=f"stripe:{unpaid}:succeeded", reference="order:unpaid",
        buyer_org_id="buyer-9", provider="stripe", amount=Money(4_000, "CNY")), actor="t")
    await journal_store.post(order_payment_received(
        idempotency_key="stripe:pi_never_created:succeeded", reference="order:ghost",
        buyer_org_id="buyer-9", provider="stripe", amount=Money(100, "CNY")), actor="t")
    _, in_dollars = await _stripe_payment(provider, Money(800, "USD"), pay=True, book=False)
    await journal_store.post(order_payment_received(
        idempotency_key=f"stripe:{in_dollars}:succeeded", reference="order:usd",
        buyer_org_id="buyer-9", provider="stripe", amount=Money(800, "CNY")), actor="t")
    # A refund Stripe made that the journal never booked.
    unbooked_refund_order, refunded_only_at_stripe = await _stripe_payment(
        provider, Money(1_500, "CNY"), pay=True, book=True)
    await provider.refund(refunded_only_at_stripe, Money(1_500, "CNY"), idempotency_key="r-2",
                          reason="orphan")
    # The booked payment's amount changed in the journal, past its triggers.
    await _tamper(
        "UPDATE journal_postings SET amount_minor = 11_000 WHERE transaction_id = "
        "(SELECT id FROM journal_transactions WHERE idempotency_key = $1)",
        f"stripe:{booked}:succeeded")

    found = {(d.kind, d.match_key): d for d in await _differences(records)}
    assert set(found) == {
        (DifferenceKind.MISSING_IN_JOURNAL, f"stripe:{unbooked}:succeeded"),
        (DifferenceKind.STATUS_MISMATCH, f"stripe:{unpaid}:succeeded"),
        (DifferenceKind.MISSING_AT_PROVIDER, "stripe:pi_never_created:succeeded"),
        (DifferenceKind.CURRENCY_MISMATCH, f"stripe:{in_dollars}:succeeded"),
        (DifferenceKind.MISSING_IN_JOURNAL, f"refunds:order:{unbooked_refund_order}"),
        (DifferenceKind.AMOUNT_MISMATCH, f"stripe:{booked}:succeeded"),
    }
    status = found[(DifferenceKind.STATUS_MISMATCH, f"stripe:{unpaid}:succeeded")]
    assert (status.provider_status, status.journal_amount_minor) == (
        "requires_payment_method", 4_000)
    amount = found[(DifferenceKind.AMOUNT_MISMATCH, f"stripe:{booked}:succeeded")]
    assert (amount.provider_amount_minor, amount.journal_amount_minor) == (12_000, 11_000)
    orphan = found[(DifferenceKind.MISSING_IN_JOURNAL, f"refunds:order:{unbooked_refund_order}")]
    assert orphan.provider_amount_minor == -1_500
    assert orphan.provider_id is not None
    assert orphan.provider_id.startswith("re_")


def _movement(key: str, amount_minor: int, currency: str = "CNY",
              transaction_key: str | None = None) -> ClearingMovement:
    return ClearingMovement("bank_transfer", key, transaction_key or key, "order:1", currency,
                            amount_minor, datetime(2026, 11, 2, tzinfo=UTC))


def _record(key: str, amount_minor: int) -> ProviderRecord:
    return ProviderRecord("bank_transfer", key, "bank receipt", key, "order:1", "CNY",
                          amount_minor, "confirmed", money_moved=True)


def test_a_reversed_posting_counts_as_absent() -> None:
    reversed_receipt = [_movement("bank-receipt:A", 500),
                        _movement("bank-receipt:A", -500, transaction_key="fix-1")]
    assert compare(reversed_receipt, []) == []
    [missing] = compare(reversed_receipt, [_record("bank-receipt:A", 500)])
    assert missing.kind is DifferenceKind.MISSING_IN_JOURNAL
    assert compare([_movement("bank-receipt:A", 500)], [_record("bank-receipt:A", 500)]) == []
