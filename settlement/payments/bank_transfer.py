"""Bank transfer (对公转账), the norm for Chinese exchanges: an invoice with a unique reference the
buyer quotes on the transfer; staff confirm each receipt from the bank statement.

- Partial payment: receipts add up; the invoice is paid once they reach its amount.
- Over-payment: the excess stays on the buyer's journal account as a credit, which staff refund
  (``refund_overpayment``), so nothing the buyer sent is ever lost track of.
- Late money: when an order is cancelled or expires its invoice is closed (``close_invoice``);
  whatever arrives on a closed invoice is all over-payment, the buyer's credit to refund, and
  never pays the order.
- Each confirmed receipt posts ``order_payment_received`` to the journal (and so the ledger) in
  the same transaction; the bank statement line id makes a receipt confirmed twice count once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from settlement import journal_store
from settlement.errors import (
    IdempotencyConflictError,
    InvalidMoneyError,
    PaymentStateError,
    UnknownRecordError,
)
from settlement.journal import order_payment_received, refund
from settlement.money import Money
from settlement.payments import attempts
from settlement.payments.provider import (
    PaymentRequest,
    PaymentStatus,
    PreparedPayment,
    ProviderPayment,
    ProviderRefund,
)
from settlement.tables import statement_connection, transaction_connection

PROVIDER_NAME = "bank_transfer"
# "Public Data eXchange": the prefix buyers write in the transfer's remark (附言).
REFERENCE_PREFIX = "PDX"

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_REFERENCE = re.compile(r"PDX-(\d{4})-(\d{6,})-(\d{2})")


def check_digits(payload: str) -> str:
    """ISO 7064 MOD 97-10 check digits of ``payload`` (digits and A–Z, letters counting 10–35).

    The scheme of IBANs and ISO 11649 creditor references, so bank systems know it. Its check is
    two digits, which every bank remark field accepts; over the digits that vary in a reference
    (year and number) it catches every single substitution and every adjacent transposition,
    because 97 is a prime that divides neither 10ᵏ nor 9·10ᵏ. (A one-character MOD 37,36 check
    misses some adjacent transpositions.)
    """
    numeric = "".join(str(_ALPHABET.index(character)) for character in payload)
    return f"{98 - int(numeric + '00') % 97:02d}"


def format_reference(year: int, number: int) -> str:
    body = f"{year:04d}-{number:06d}"
    return f"{REFERENCE_PREFIX}-{body}-{check_digits(REFERENCE_PREFIX + body.replace('-', ''))}"


def is_valid_reference(reference: str) -> bool:
    """Whether ``reference`` (as a buyer typed it, case and spaces aside) is well formed."""
    cleaned = reference.strip().upper()
    match = _REFERENCE.fullmatch(cleaned)
    if match is None:
        return False
    year, number, check = match.groups()
    return check_digits(f"{REFERENCE_PREFIX}{year}{number}") == check


# Issues the invoice, or nothing when its key's invoice was issued before (a retry).
_INSERT_INVOICE = "SELECT settlement_insert_bank_invoice($1::settlement_bank_invoice)"


class _InvoiceNumbers:
    """Reference numbers from the bank_invoice_number sequence, drawn a block at a time, as a
    sequence's own CACHE setting would: one round trip serves a block of invoices.

    A number drawn is used once or never: numbers of rolled-back orders and those left in a
    block when the process stops are skipped, and invoices of several server processes are
    numbered out of issue order. References are payment-matching keys, so neither matters.
    """

    def __init__(self, block: int) -> None:
        self._block = block
        self._spare: list[int] = []

    async def take(self) -> int:
        if not self._spare:
            async with statement_connection() as connection:
                drawn = await connection.fetch(
                    "SELECT nextval('bank_invoice_number') AS number "
                    "FROM generate_series(1, $1)", self._block)
            # Concurrent callers may both draw a block; every number is still used once.
            self._spare.extend(sorted((row["number"] for row in drawn), reverse=True))
        return self._spare.pop()


@dataclass(frozen=True, slots=True)
class InvoiceState:
    invoice_id: uuid.UUID
    reference: str
    order_id: str
    buyer_org_id: str
    amount: Money
    received: Money
    refunded: Money
    # Refunded of the buyer's credit (over-payment), as opposed to refunds of the order.
    refunded_credit: Money
    closed: bool = False

    @property
    def payable(self) -> Money:
        """What the invoice still takes as payment: nothing once it is closed."""
        return Money.zero(self.amount.currency) if self.closed else self.amount

    @property
    def is_paid(self) -> bool:
        return not self.closed and self.received >= self.amount

    @property
    def due(self) -> Money:
        return max(self.payable - self.received, Money.zero(self.amount.currency))

    @property
    def overpaid(self) -> Money:
        return max(self.received - self.payable, Money.zero(self.amount.currency))

    @property
    def credit_to_refund(self) -> Money:
        """Over-payment not refunded yet."""
        return max(self.overpaid - self.refunded_credit, Money.zero(self.amount.currency))

    @property
    def status(self) -> PaymentStatus:
        if self.is_paid:
            return PaymentStatus.SUCCEEDED
        if self.received.is_positive:
            return PaymentStatus.PROCESSING
        return PaymentStatus.CREATED


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    """What one confirmed receipt did: ``became_paid`` is True for the receipt that completed the
    invoice (the orders use case moves the order to paid on it); replays change nothing."""

    invoice: InvoiceState
    receipt_id: uuid.UUID
    recorded: bool
    became_paid: bool


async def _state(connection: Any, where: str, value: object) -> InvoiceState:
    row = await connection.fetchrow(
        # ``where`` is always one of our constant column names, never input.
        "SELECT i.*, "  # noqa: S608
        "(SELECT COALESCE(sum(amount_minor), 0) FROM bank_receipts r WHERE r.invoice_id = i.id)"
        " AS received_minor, "
        "(SELECT COALESCE(sum(amount_minor), 0) FROM bank_refunds f WHERE f.invoice_id = i.id)"
        " AS refunded_minor, "
        "(SELECT COALESCE(sum(amount_minor), 0) FROM bank_refunds f WHERE f.invoice_id = i.id "
        "AND f.of_credit) AS refunded_credit_minor, "
        "EXISTS (SELECT 1 FROM bank_invoice_closures c WHERE c.invoice_id = i.id) AS closed "
        f"FROM bank_invoices i WHERE {where} = $1",
        value,
    )
    if row is None:
        raise UnknownRecordError(f"no bank transfer invoice {value}", field="reference")
    currency = row["currency"]
    return InvoiceState(
        invoice_id=row["id"], reference=row["reference"], order_id=row["order_id"],
        buyer_org_id=row["buyer_org_id"], amount=Money(row["amount_minor"], currency),
        received=Money(int(row["received_minor"]), currency),
        refunded=Money(int(row["refunded_minor"]), currency),
        refunded_credit=Money(int(row["refunded_credit_minor"]), currency),
        closed=row["closed"],
    )


def _as_payment(state: InvoiceState) -> ProviderPayment:
    return ProviderPayment(provider=PROVIDER_NAME, provider_payment_id=state.reference,
                           status=state.status, amount=state.amount,
                           amount_received=state.received, reference=state.reference)


class BankTransferProvider:
    """The default payment provider: invoices, staff-confirmed receipts, refund instructions."""

    # Invoice reference numbers drawn from the database in one round trip (_InvoiceNumbers).
    NUMBERS_DRAWN_AT_ONCE = 32

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._numbers = _InvoiceNumbers(self.NUMBERS_DRAWN_AT_ONCE)

    @property
    def name(self) -> str:
        return PROVIDER_NAME

    @property
    def in_database(self) -> bool:
        # An invoice is a row of ours; the buyer's bank is never called.
        return True

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        async with transaction_connection() as connection:
            # Insert first: a retry under the same key (or a call racing it, which waits on the
            # key's unique index) then finds the invoice already issued.
            prepared = await self.prepare_payment(request)
            if await connection.fetchval(_INSERT_INVOICE, prepared.row):
                return prepared.payment
            existing = await _state(connection, "i.idempotency_key", request.idempotency_key)
        if (existing.order_id, existing.buyer_org_id, existing.amount) != (
                request.order_id, request.buyer_org_id, request.amount):
            raise IdempotencyConflictError(
                f"payment key {request.idempotency_key!r} was used for another invoice",
                field="idempotency_key")
        return _as_payment(existing)

    async def prepare_payment(self, request: PaymentRequest) -> PreparedPayment:
        """A new invoice for ``request``, with its reference, as ``settlement_bank_invoice``."""
        if request.connected_account is not None:
            raise PaymentStateError("bank transfer has no connected accounts",
                                    field="connected_account")
        issued_on = datetime.now(UTC).astimezone(self._zone).date()
        reference = format_reference(issued_on.year, await self._numbers.take())
        invoice_id = uuid.uuid4()
        nothing = Money.zero(request.amount.currency)
        payment = _as_payment(InvoiceState(
            invoice_id=invoice_id, reference=reference, order_id=request.order_id,
            buyer_org_id=request.buyer_org_id, amount=request.amount, received=nothing,
            refunded=nothing, refunded_credit=nothing))
        return PreparedPayment(payment=payment, row=(
            invoice_id, reference, request.order_id, request.buyer_org_id,
            request.idempotency_key, request.amount.amount_minor, request.amount.currency))

    async def fetch_status(self, provider_payment_id: str) -> ProviderPayment:
        async with transaction_connection() as connection:
            return _as_payment(await _state(connection, "i.reference", provider_payment_id))

    async def invoice(self, reference: str) -> InvoiceState:
        async with transaction_connection() as connection:
            return await _state(connection, "i.reference", reference.strip().upper())

    async def confirm_receipt(self, reference: str, *, bank_transaction_ref: str,
                              amount: Money, received_on: date,
                              confirmed_by: str) -> ReceiptOutcome:
        """Staff record one credit line of the bank statement against an invoice."""
        if not amount.is_positive:
            raise InvalidMoneyError("a receipt must be positive", field="amount_minor")
        if not is_valid_reference(reference):
            raise UnknownRecordError(f"{reference!r} is not a valid invoice reference",
                                     field="reference")
        reference = reference.strip().upper()
        async with transaction_connection() as connection:
            locked = await connection.fetchrow(
                "SELECT id, currency FROM bank_invoices WHERE reference = $1 FOR UPDATE",
                reference)
            if locked is None:
                raise UnknownRecordError(f"no bank transfer invoice {reference}",
                                         field="reference")
            amount.require_same_currency(Money(0, locked["currency"]), field="currency")
            before = await _state(connection, "i.id", locked["id"])
            previous = await connection.fetchrow(
                "SELECT id, invoice_id, amount_minor, currency, received_on FROM bank_receipts "
                "WHERE bank_transaction_ref = $1", bank_transaction_ref)
            if previous is not None:
                if (previous["invoice_id"], previous["amount_minor"], previous["currency"],
                        previous["received_on"]) != (locked["id"], amount.amount_minor,
                                                     amount.currency, received_on):
                    raise IdempotencyConflictError(
                        f"bank line {bank_transaction_ref!r} was already confirmed differently",
                        field="bank_transaction_ref")
                return ReceiptOutcome(before, previous["id"], recorded=False,
                                      became_paid=False)
            receipt_id = uuid.uuid4()
            await connection.execute(
                "INSERT INTO bank_receipts (id, invoice_id, bank_transaction_ref, amount_minor, "
                "currency, received_on, confirmed_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                receipt_id, locked["id"], bank_transaction_ref, amount.amount_minor,
                amount.currency, received_on, confirmed_by)
            after = await _state(connection, "i.id", locked["id"])
            await journal_store.post(
                order_payment_received(
                    idempotency_key=f"bank-receipt:{bank_transaction_ref}",
                    reference=f"order:{after.order_id}", buyer_org_id=after.buyer_org_id,
                    provider=PROVIDER_NAME, amount=amount),
                actor=confirmed_by)
            became_paid = after.is_paid and not before.is_paid
            if became_paid:
                await attempts.advance_status(PROVIDER_NAME, reference, PaymentStatus.SUCCEEDED)
            elif after.received.is_positive:
                await attempts.advance_status(PROVIDER_NAME, reference, PaymentStatus.PROCESSING)
            return ReceiptOutcome(after, receipt_id, recorded=True, became_paid=became_paid)

    async def refund(self, provider_payment_id: str, amount: Money, *, idempotency_key: str,
                     reason: str, of_credit: bool = False) -> ProviderRefund:
        """Record a refund instruction for staff to pay from the bank account; at most what was
        received and not yet refunded. The journal entry is the caller's (it knows whether the
        order was settled)."""
        if not amount.is_positive:
            raise InvalidMoneyError("a refund must be positive", field="amount_minor")
        reference = provider_payment_id.strip().upper()
        async with transaction_connection() as connection:
            locked = await connection.fetchrow(
                "SELECT id FROM bank_invoices WHERE reference = $1 FOR UPDATE", reference)
            if locked is None:
                raise UnknownRecordError(f"no bank transfer invoice {reference}",
                                         field="reference")
            previous = await connection.fetchrow(
                "SELECT id, invoice_id, amount_minor, currency FROM bank_refunds "
                "WHERE idempotency_key = $1", idempotency_key)
            if previous is not None:
                if (previous["invoice_id"], previous["amount_minor"], previous["currency"]) != (
                        locked["id"], amount.amount_minor, amount.currency):
                    raise IdempotencyConflictError(
                        f"refund key {idempotency_key!r} was used for another refund",
                        field="idempotency_key")
                return ProviderRefund(PROVIDER_NAME, str(previous["id"]), reference, amount,
                                      "instructed")
            state = await _state(connection, "i.id", locked["id"])
            amount.require_same_currency(state.amount, field="currency")
            refundable = state.received - state.refunded
            if amount > refundable:
                raise PaymentStateError(
                    f"cannot refund {amount.amount_minor}: {refundable.amount_minor} received "
                    "and not yet refunded", field="amount_minor")
            refund_id = uuid.uuid4()
            await connection.execute(
                "INSERT INTO bank_refunds (id, invoice_id, idempotency_key, amount_minor, "
                "currency, reason, of_credit) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                refund_id, locked["id"], idempotency_key, amount.amount_minor, amount.currency,
                reason[:200], of_credit)
        return ProviderRefund(PROVIDER_NAME, str(refund_id), reference, amount, "instructed")

    async def refund_overpayment(self, reference: str, *, actor: str) -> ProviderRefund | None:
        """Refund the invoice's whole unrefunded over-payment (on a closed invoice: everything
        received) and post it to the journal out of the buyer's credit; None when there is
        none."""
        async with transaction_connection() as connection:
            await connection.execute(
                "SELECT 1 FROM bank_invoices WHERE reference = $1 FOR UPDATE",
                reference.strip().upper())
            state = await _state(connection, "i.reference", reference.strip().upper())
            credit = state.credit_to_refund
            if not credit.is_positive:
                return None
            # Keyed by the credit refunded so far, so a retry of this call finds its own refund.
            key = f"bank-overpayment:{state.reference}:{state.refunded_credit.amount_minor}"
            instructed = await self.refund(state.reference, credit, idempotency_key=key,
                                           reason="over-payment", of_credit=True)
            await journal_store.post(
                refund(idempotency_key=key, reference=f"order:{state.order_id}",
                       buyer_org_id=state.buyer_org_id, provider=PROVIDER_NAME, amount=credit),
                actor=actor)
            return instructed


async def close_invoice(reference: str, *, reason: str) -> None:
    """Inside the transaction that cancels or expires the invoice's order: from now on every
    receipt on it is the buyer's credit to refund (once; closing again changes nothing)."""
    async with transaction_connection() as connection:
        await connection.execute(
            "INSERT INTO bank_invoice_closures (invoice_id, reason) "
            "SELECT id, $2 FROM bank_invoices WHERE reference = $1 "
            "ON CONFLICT (invoice_id) DO NOTHING", reference.strip().upper(), reason[:200])


async def invoices_with_credit() -> list[InvoiceState]:
    """Every invoice holding money the buyer is owed back (over-payment or late money), for
    staff to refund."""
    async with transaction_connection() as connection:
        ids = await connection.fetch(
            "SELECT i.id FROM bank_invoices i JOIN bank_receipts r ON r.invoice_id = i.id "
            "GROUP BY i.id, i.amount_minor HAVING sum(r.amount_minor) > i.amount_minor "
            "OR EXISTS (SELECT 1 FROM bank_invoice_closures c WHERE c.invoice_id = i.id) "
            "ORDER BY i.id")
        states = [await _state(connection, "i.id", row["id"]) for row in ids]
    return [state for state in states if state.credit_to_refund.is_positive]
