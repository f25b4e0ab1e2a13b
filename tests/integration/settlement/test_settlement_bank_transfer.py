"""Bank transfer: invoices with unique references, staff-confirmed receipts, partial and
over-payment, refunds bounded by what was received, and the journal kept in step."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from settlement import journal_store
from settlement.errors import IdempotencyConflictError, PaymentStateError, UnknownRecordError
from settlement.journal import Account
from settlement.money import Money
from settlement.payments import attempts
from settlement.payments.bank_transfer import BankTransferProvider, is_valid_reference
from settlement.payments.provider import PaymentRequest, PaymentStatus
from settlement.tables import BankInvoiceRow

BANK = Account.clearing("bank_transfer")
BUYER = Account.buyer("buyer-1")


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def request(order_id: str = "order-1", amount_minor: int = 10_000) -> PaymentRequest:
    return PaymentRequest(order_id=order_id, buyer_org_id="buyer-1", amount=cny(amount_minor),
                          idempotency_key=attempts.payment_idempotency_key(order_id))


@pytest.fixture
def bank() -> BankTransferProvider:
    return BankTransferProvider(ZoneInfo("Asia/Shanghai"))


async def test_invoice_is_idempotent_and_references_are_unique(db: str,
                                                               bank: BankTransferProvider) -> None:
    first = await attempts.start_payment(bank, request())
    again = await attempts.start_payment(bank, request())
    other = await attempts.start_payment(bank, request("order-2"))
    assert first.provider_payment_id == again.provider_payment_id
    assert first.reference is not None
    assert is_valid_reference(first.reference)
    assert other.reference != first.reference
    assert first.status is PaymentStatus.CREATED
    # The provider itself asked again under the key (a retry that lost its answer).
    retried = await bank.create_payment(request())
    assert (retried.provider_payment_id, retried.status) == (first.provider_payment_id,
                                                             PaymentStatus.CREATED)
    with pytest.raises(IdempotencyConflictError):
        await bank.create_payment(request(amount_minor=9_999))


async def test_reference_numbers_are_drawn_a_block_at_a_time(db: str,
                                                            bank: BankTransferProvider) -> None:
    """Each server process draws its own block of numbers: one round trip serves a block, and
    no number is ever issued twice, across processes too."""
    async def last_number() -> int:
        connection = await asyncpg.connect(db)
        try:
            return int(await connection.fetchval(
                "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
                "FROM bank_invoice_number"))
        finally:
            await connection.close()

    other_process = BankTransferProvider(ZoneInfo("Asia/Shanghai"))
    block = BankTransferProvider.NUMBERS_DRAWN_AT_ONCE
    start = await last_number()
    issued = [await bank.create_payment(request(f"order-{n}")) for n in range(block + 1)]
    issued.append(await other_process.create_payment(request("order-other")))
    references = [payment.reference for payment in issued]
    assert all(reference is not None and is_valid_reference(reference)
               for reference in references)
    assert len(set(references)) == len(references)
    # Two blocks for the first process, one for the other.
    assert await last_number() - start == 3 * block


async def test_an_invoice_and_its_attempt_are_written_together(
        db: str, bank: BankTransferProvider) -> None:
    invoice = await attempts.start_payment(bank, request())
    [attempt] = await attempts.attempts_for_order("order-1")
    # Written once, already naming the invoice: no attempt is ever left without its payment.
    assert (attempt.provider_payment_id, attempt.status) == (invoice.provider_payment_id,
                                                             PaymentStatus.CREATED)
    # An attempt stored before its payment (an older, interrupted start) is completed by a
    # retry; another request under its key is refused, and its invoice rolled back with it.
    await attempts.record_attempt(bank.name, request("order-2"))
    with pytest.raises(IdempotencyConflictError):
        await attempts.start_payment(bank, request("order-2", amount_minor=9_999))
    assert await BankInvoiceRow.count().where(BankInvoiceRow.order_id == "order-2").run() == 0
    retried = await attempts.start_payment(bank, request("order-2"))
    [completed] = await attempts.attempts_for_order("order-2")
    assert completed.provider_payment_id == retried.provider_payment_id


async def test_partial_then_over_payment(db: str, bank: BankTransferProvider) -> None:
    invoice = await attempts.start_payment(bank, request())
    reference = invoice.provider_payment_id
    part = await bank.confirm_receipt(reference, bank_transaction_ref="stmt-1",
                                      amount=cny(4_000), received_on=date(2026, 3, 1),
                                      confirmed_by="staff:1")
    assert (part.invoice.is_paid, part.became_paid, part.invoice.due) == (False, False,
                                                                          cny(6_000))
    assert (await attempts.attempts_for_order("order-1"))[0].status is PaymentStatus.PROCESSING
    rest = await bank.confirm_receipt(reference.lower(), bank_transaction_ref="stmt-2",
                                      amount=cny(7_000), received_on=date(2026, 3, 2),
                                      confirmed_by="staff:1")
    assert rest.became_paid
    assert rest.invoice.overpaid == cny(1_000)
    assert (await bank.fetch_status(reference)).status is PaymentStatus.SUCCEEDED
    assert (await attempts.attempts_for_order("order-1"))[0].status is PaymentStatus.SUCCEEDED
    # The same statement line confirmed again counts once; confirmed differently is a conflict.
    replay = await bank.confirm_receipt(reference, bank_transaction_ref="stmt-2",
                                        amount=cny(7_000), received_on=date(2026, 3, 2),
                                        confirmed_by="staff:2")
    assert (replay.recorded, replay.became_paid) == (False, False)
    with pytest.raises(IdempotencyConflictError):
        await bank.confirm_receipt(reference, bank_transaction_ref="stmt-2", amount=cny(1),
                                   received_on=date(2026, 3, 2), confirmed_by="staff:2")
    assert await journal_store.balance(BANK, "CNY") == 11_000
    assert await journal_store.balance(BUYER, "CNY") == -11_000

    refunded = await bank.refund_overpayment(reference, actor="staff:1")
    assert refunded is not None
    assert refunded.amount == cny(1_000)
    assert await bank.refund_overpayment(reference, actor="staff:1") is None
    assert await journal_store.balance(BANK, "CNY") == 10_000
    assert (await bank.invoice(reference)).credit_to_refund == cny(0)
    with pytest.raises(PaymentStateError):
        await bank.refund(reference, cny(10_001), idempotency_key="too-much", reason="x")
    full = await bank.refund(reference, cny(10_000), idempotency_key="order-1-refund",
                             reason="order cancelled")
    assert full.status == "instructed"
    assert (await bank.refund(reference, cny(10_000), idempotency_key="order-1-refund",
                              reason="retry")).provider_refund_id == full.provider_refund_id


async def test_unknown_or_malformed_references_are_refused(db: str,
                                                           bank: BankTransferProvider) -> None:
    with pytest.raises(UnknownRecordError):
        await bank.confirm_receipt("PDX-2026-000001-X", bank_transaction_ref="s",
                                   amount=cny(1), received_on=date(2026, 1, 1), confirmed_by="s")
    with pytest.raises(UnknownRecordError):
        await bank.confirm_receipt("nonsense", bank_transaction_ref="s", amount=cny(1),
                                   received_on=date(2026, 1, 1), confirmed_by="s")


async def test_receipts_are_append_only(db: str, bank: BankTransferProvider) -> None:
    invoice = await bank.create_payment(request())
    await bank.confirm_receipt(invoice.provider_payment_id, bank_transaction_ref="stmt-1",
                               amount=cny(1), received_on=date(2026, 1, 1), confirmed_by="s")
    connection = await asyncpg.connect(db)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("UPDATE bank_receipts SET amount_minor = 99")
    finally:
        await connection.close()
