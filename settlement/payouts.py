"""Bank payouts of an operator's payable balance, for operators paid by bank transfer (those
with a Stripe connected account are paid by Stripe's transfers).

Staff instruct a payout: under a per-operator lock, never more than the operator's payable
balance (derived from the journal at that moment), it posts operator payable → payouts in
transit and gets a reference to quote on the transfer; when the bank has sent it, staff record
the bank line, which posts payouts in transit → the bank clearing account. Both steps are
idempotent (the instruction by its key, with the same key and another request refused; the
sending by its bank line) and ledgered with the journal in the same transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.canonical import canonical_json
from ledger.log import append_record
from settlement import journal_store
from settlement.errors import IdempotencyConflictError, PaymentStateError, UnknownRecordError
from settlement.journal import Account, payout_instructed, payout_sent
from settlement.money import Money
from settlement.payments.bank_transfer import PROVIDER_NAME as BANK_TRANSFER
from settlement.payments.bank_transfer import check_digits
from settlement.tables import transaction_connection

INSTRUCTED_KIND = "settlement.payout_instructed"
SENT_KIND = "settlement.payout_sent"
# "Public Data eXchange Payout": the reference on the transfer to the operator.
REFERENCE_PREFIX = "PDXP"


@dataclass(frozen=True, slots=True)
class Payout:
    id: uuid.UUID
    reference: str
    operator_org_id: str
    amount: Money
    period: str | None
    instructed_by: str
    instructed_at: datetime
    bank_transaction_ref: str | None
    sent_on: date | None

    @property
    def journal_reference(self) -> str:
        return f"payout:{self.reference}"


def _payout(row: Any) -> Payout:
    return Payout(
        id=row["id"], reference=row["reference"], operator_org_id=row["operator_org_id"],
        amount=Money(row["amount_minor"], row["currency"].strip()), period=row["period"],
        instructed_by=row["instructed_by"], instructed_at=row["instructed_at"],
        bank_transaction_ref=row["bank_transaction_ref"], sent_on=row["sent_on"])


def _reference(year: int, number: int) -> str:
    body = f"{year:04d}-{number:06d}"
    return f"{REFERENCE_PREFIX}-{body}-{check_digits(REFERENCE_PREFIX + body.replace('-', ''))}"


async def payable_balance(operator_org_id: str, currency: str) -> Money:
    """What the exchange owes the operator now (its payable account's credit balance)."""
    account = Account.operator_payable(operator_org_id)
    return Money(account.natural_balance(await journal_store.balance(account, currency)),
                 currency)


async def instruct(operator_org_id: str, *, amount: Money | None, currency: str,
                   period: str | None, idempotency_key: str, actor: str,
                   today: date) -> Payout:
    """Instruct a payout of ``amount`` (all that is payable when None) to the operator."""
    fingerprint = hashlib.sha256(canonical_json({
        "operator_org_id": operator_org_id, "currency": currency, "period": period,
        "amount_minor": None if amount is None else str(amount.amount_minor)})).hexdigest()
    async with transaction_connection() as connection:
        # One operator's payouts queue here, so two cannot both spend the same balance.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"settlement.payout:{operator_org_id}")
        existing = await connection.fetchrow(
            "SELECT * FROM operator_payouts WHERE idempotency_key = $1", idempotency_key)
        if existing is not None:
            if existing["request_fingerprint"] != fingerprint:
                raise IdempotencyConflictError(
                    "this Idempotency-Key was already used for a different payout",
                    field="Idempotency-Key")
            return _payout(existing)
        payable = await payable_balance(operator_org_id, currency)
        paying = payable if amount is None else amount
        paying.require_same_currency(payable, field="currency")
        if not paying.is_positive or paying > payable:
            raise PaymentStateError(
                f"a payout must be from 1 to the {payable.amount_minor} {currency} payable to "
                f"the operator, got {paying.amount_minor}", field="amount_minor")
        number = await connection.fetchval("SELECT nextval('operator_payout_number')")
        reference = _reference(today.year, number)
        row = await connection.fetchrow(
            "INSERT INTO operator_payouts (id, reference, operator_org_id, currency, "
            "amount_minor, period, idempotency_key, request_fingerprint, instructed_by) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
            uuid.uuid4(), reference, operator_org_id, currency, paying.amount_minor, period,
            idempotency_key, fingerprint, actor)
        payout = _payout(row)
        await journal_store.post(payout_instructed(
            idempotency_key=f"{payout.journal_reference}:instructed",
            reference=payout.journal_reference, operator_org_id=operator_org_id,
            amount=paying), actor=actor)
        await append_record(
            INSTRUCTED_KIND, actor=actor, subject=f"payout:{reference}",
            payload={"payout_id": str(payout.id), "reference": reference,
                     "operator_org_id": operator_org_id, "currency": currency,
                     "amount_minor": str(paying.amount_minor), "period": period})
        return payout


async def mark_sent(reference: str, *, bank_transaction_ref: str, sent_on: date,
                    actor: str) -> Payout:
    """The bank sent the payout (its statement line); recording the same line again changes
    nothing, another line for a payout already sent is a conflict."""
    async with transaction_connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM operator_payouts WHERE reference = $1 FOR UPDATE",
            reference.strip().upper())
        if row is None:
            raise UnknownRecordError(f"no payout {reference}", field="reference")
        payout = _payout(row)
        if payout.bank_transaction_ref is not None:
            if payout.bank_transaction_ref != bank_transaction_ref:
                raise PaymentStateError(
                    f"payout {payout.reference} was already sent as bank line "
                    f"{payout.bank_transaction_ref}", field="bank_transaction_ref")
            return payout
        await journal_store.post(payout_sent(
            idempotency_key=f"{payout.journal_reference}:sent",
            reference=payout.journal_reference, provider=BANK_TRANSFER, amount=payout.amount),
            actor=actor)
        await append_record(
            SENT_KIND, actor=actor, subject=f"payout:{payout.reference}",
            payload={"payout_id": str(payout.id), "reference": payout.reference,
                     "bank_transaction_ref": bank_transaction_ref,
                     "sent_on": sent_on.isoformat()})
        row = await connection.fetchrow(
            "UPDATE operator_payouts SET bank_transaction_ref = $2, sent_on = $3, "
            "sent_by = $4, sent_at = now() WHERE id = $1 RETURNING *",
            payout.id, bank_transaction_ref, sent_on, actor)
        return _payout(row)


async def payouts_of(operator_org_id: str, *, since: datetime | None = None,
                     until: datetime | None = None) -> list[Payout]:
    """The operator's payouts, instructed in ``[since, until)`` when given, oldest first."""
    async with transaction_connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM operator_payouts WHERE operator_org_id = $1 "
            "AND ($2::timestamptz IS NULL OR instructed_at >= $2) "
            "AND ($3::timestamptz IS NULL OR instructed_at < $3) ORDER BY instructed_at, id",
            operator_org_id, since, until)
    return [_payout(row) for row in rows]
