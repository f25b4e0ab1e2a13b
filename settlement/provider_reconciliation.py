"""Reconciling the journal's clearing accounts against what the payment providers recorded.

Every movement of ``clearing:<provider>`` should match a record at that provider, and every
record there should have its posting:

- bank transfer: each receipt staff confirmed from the bank statement (``bank_receipts``) is the
  journal transaction ``bank-receipt:<bank line>``; each refund instruction (``bank_refunds``)
  is the journal refund under the same idempotency key; each operator payout the bank sent
  (``operator_payouts``) is the journal transaction ``payout:<reference>:sent``;
- Stripe: each PaymentIntent of a payment attempt is the journal transaction
  ``stripe:<intent>:succeeded`` when (and only when) it succeeded, for what it received; the
  refunds Stripe holds for an intent add up to the journal's clearing credits for its order.
  A destination charge (an intent with ``transfer_data``) also sent the operator's share on:
  the journal's ``stripe:<intent>:transferred`` matches the amount received less the
  application fee; and the transfers reversed by its refunds (``reverse_transfer`` less the
  ``refund_application_fee`` share) add up to the journal's transfer reversals for the order.
  Stripe keeps those reversed shares on Transfer Reversal and Application Fee Refund objects,
  which this report does not read: the expected shares are computed from the refunds Stripe
  holds, in their order, with ``fees.refund_portion`` as refunds are booked, so a refund at
  Stripe with no reversal in the journal (or the reverse) shows as a difference.
  Stripe is read through PaymentIntents and Refunds, not balance transactions: localstripe,
  the double the tests run against, does not create balance transactions for PaymentIntents,
  and the two give the same per-payment amounts (balance transactions add Stripe's own fees,
  which the journal does not book).

``compare`` is pure; ``reconcile`` reads the stores and the provider for one period and hands
both sides to it. A reversal counts against the key of the transaction it reverses, so a
reversed receipt shows as the difference it is. A clean state reports nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import stripe

from settlement.fees import Split, refund_portion
from settlement.journal import Account, AccountKind, Direction, TransactionKind
from settlement.money import Money
from settlement.payments.bank_transfer import PROVIDER_NAME as BANK_TRANSFER
from settlement.payments.provider import PaymentStatus
from settlement.payments.stripe_provider import PROVIDER_NAME as STRIPE
from settlement.payments.stripe_provider import (
    StripeProvider,
    as_payment,
    connect_transfer_of,
    plain,
)
from settlement.tables import transaction_connection

_STRIPE_PAYMENT_PREFIX = "stripe:"
_STRIPE_PAYMENT_SUFFIX = ":succeeded"
_STRIPE_TRANSFER_SUFFIX = ":transferred"
_REFUNDS_PREFIX = "refunds:order:"
_TRANSFER_REVERSALS_PREFIX = "transfer-reversals:order:"
_OUTFLOW_KINDS = frozenset({TransactionKind.REFUND, TransactionKind.SETTLED_REFUND,
                            TransactionKind.PAYOUT})
# Stripe refund states in which the money has left (or is leaving) the balance.
_REFUND_MOVED = frozenset({"succeeded", "pending", "requires_action"})
# The status of a record the provider answered "no such object" for.
ABSENT = "absent"


class DifferenceKind(StrEnum):
    MISSING_IN_JOURNAL = "missing_in_journal"
    MISSING_AT_PROVIDER = "missing_at_provider"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"


@dataclass(frozen=True, slots=True)
class ClearingMovement:
    """One journal posting to ``clearing:<provider>``, signed: money in positive, out negative.

    ``match_key`` names the provider record it should match (see the module docstring)."""

    provider: str
    match_key: str
    transaction_key: str
    reference: str
    currency: str
    amount_minor: int
    posted_at: datetime


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """A provider's record of money in (positive) or out (negative).

    ``money_moved`` is False for a record whose money has not (yet) moved, such as a
    PaymentIntent awaiting its card: the journal must then have nothing for it."""

    provider: str
    match_key: str
    record: str
    provider_id: str
    reference: str | None
    currency: str
    amount_minor: int
    status: str
    money_moved: bool


@dataclass(frozen=True, slots=True)
class Difference:
    kind: DifferenceKind
    provider: str
    match_key: str
    # What the provider record is ("bank receipt", "PaymentIntent", ...) and its id there.
    record: str
    provider_id: str | None
    reference: str | None
    journal_transactions: tuple[str, ...]
    journal_amount_minor: int | None
    journal_currency: str | None
    provider_amount_minor: int | None
    provider_currency: str | None
    provider_status: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    period_start: datetime
    period_end: datetime
    providers: tuple[str, ...]
    journal_movements: int
    provider_records: int
    differences: tuple[Difference, ...]
    notes: tuple[str, ...]


def _journal_totals(movements: list[ClearingMovement]) -> dict[str, int]:
    totals: defaultdict[str, int] = defaultdict(int)
    for movement in movements:
        totals[movement.currency] += movement.amount_minor
    # A reversed movement nets to nothing and is as good as absent.
    return {currency: total for currency, total in totals.items() if total}


def compare(journal: Iterable[ClearingMovement],
            provider: Iterable[ProviderRecord]) -> list[Difference]:
    """Every difference between the journal's clearing movements and the provider records,
    matched by ``(provider, match_key)``; pure."""
    by_key: defaultdict[tuple[str, str], list[ClearingMovement]] = defaultdict(list)
    for movement in journal:
        by_key[(movement.provider, movement.match_key)].append(movement)
    records: dict[tuple[str, str], ProviderRecord] = {
        (record.provider, record.match_key): record for record in provider}
    differences: list[Difference] = []
    for key in sorted(set(by_key) | set(records)):
        movements = by_key.get(key, [])
        record = records.get(key)
        totals = _journal_totals(movements)

        def difference(kind: DifferenceKind, detail: str, *, currency: str | None = None,
                       amount: int | None = None, key: tuple[str, str] = key,
                       record: ProviderRecord | None = record,
                       movements: list[ClearingMovement] = movements) -> Difference:
            return _difference(kind, key, record, movements, detail, currency=currency,
                               amount=amount)

        journal_currency, journal_amount = next(iter(totals.items()), (None, None))
        if record is None or record.status == ABSENT:
            if totals:
                differences.append(difference(
                    DifferenceKind.MISSING_AT_PROVIDER,
                    f"the journal moved {journal_amount} {journal_currency} through "
                    f"clearing:{key[0]} that {key[0]} has no record of",
                    currency=journal_currency, amount=journal_amount))
            continue
        if not record.money_moved:
            if totals:
                differences.append(difference(
                    DifferenceKind.STATUS_MISMATCH,
                    f"the journal booked money for {record.record} {record.provider_id}, "
                    f"whose status at {key[0]} is {record.status}",
                    currency=journal_currency, amount=journal_amount))
            continue
        if not totals:
            differences.append(difference(
                DifferenceKind.MISSING_IN_JOURNAL,
                f"{record.record} {record.provider_id} moved {record.amount_minor} "
                f"{record.currency} at {key[0]} with no journal posting"))
            continue
        if len(totals) > 1 or record.currency not in totals:
            differences.append(difference(
                DifferenceKind.CURRENCY_MISMATCH,
                f"{record.record} {record.provider_id} is in {record.currency}; the journal "
                f"booked it in {', '.join(sorted(totals))}",
                currency=journal_currency, amount=journal_amount))
            continue
        if totals[record.currency] != record.amount_minor:
            differences.append(difference(
                DifferenceKind.AMOUNT_MISMATCH,
                f"{record.record} {record.provider_id} moved {record.amount_minor} "
                f"{record.currency}; the journal booked {totals[record.currency]}",
                currency=record.currency, amount=totals[record.currency]))
    return differences


def _difference(kind: DifferenceKind, key: tuple[str, str], record: ProviderRecord | None,
                movements: list[ClearingMovement], detail: str, *, currency: str | None,
                amount: int | None) -> Difference:
    reference = record.reference if record is not None and record.reference else (
        movements[0].reference if movements else None)
    return Difference(
        kind=kind, provider=key[0], match_key=key[1],
        record="journal only" if record is None else record.record,
        provider_id=None if record is None else record.provider_id, reference=reference,
        journal_transactions=tuple(sorted({m.transaction_key for m in movements})),
        journal_amount_minor=amount, journal_currency=currency,
        provider_amount_minor=None if record is None or record.status == ABSENT
        else record.amount_minor,
        provider_currency=None if record is None or record.status == ABSENT
        else record.currency,
        provider_status=None if record is None else record.status, detail=detail)


def match_key(provider: str, transaction_key: str, kind: TransactionKind,
              reference: str) -> str:
    """The provider record a clearing movement answers to. Stripe refunds carry none of our
    keys back, so they are matched per order: all of an order's refunds against all of its
    intent's refunds, and all of its transfer reversals against those its refunds made."""
    if provider == STRIPE and kind in _OUTFLOW_KINDS:
        return f"refunds:{reference}"
    if provider == STRIPE and kind is TransactionKind.CONNECT_TRANSFER_REVERSAL:
        return f"transfer-reversals:{reference}"
    return transaction_key


_CLEARING_MOVEMENTS = """
SELECT t.idempotency_key, t.kind, t.reference, t.posted_at,
       original.idempotency_key AS original_key, original.kind AS original_kind,
       p.account, p.direction, p.currency, p.amount_minor
  FROM journal_postings p
  JOIN journal_transactions t ON t.id = p.transaction_id
  LEFT JOIN journal_transactions original ON original.id = t.reverses_id
 WHERE p.account LIKE 'clearing:%'
 ORDER BY t.id, p.id
"""


def _clearing_movement(row: Any) -> ClearingMovement:
    account = Account.parse(row["account"])
    # The query selects clearing accounts only, and every clearing account has an owner.
    assert account.kind is AccountKind.CLEARING
    assert account.owner is not None
    base_key = row["original_key"] or row["idempotency_key"]
    base_kind = TransactionKind(row["original_kind"] or row["kind"])
    amount = int(row["amount_minor"])
    return ClearingMovement(
        provider=account.owner,
        match_key=match_key(account.owner, base_key, base_kind, row["reference"]),
        transaction_key=row["idempotency_key"], reference=row["reference"],
        currency=row["currency"].strip(),
        amount_minor=amount if Direction(row["direction"]) is Direction.DEBIT else -amount,
        posted_at=row["posted_at"])


async def clearing_movements() -> list[ClearingMovement]:
    """Every clearing posting in the journal (a period's keys are matched in full, so a payment
    booked on either side of a period boundary is not a false difference)."""
    async with transaction_connection() as connection:
        rows = await connection.fetch(_CLEARING_MOVEMENTS)
    return [_clearing_movement(row) for row in rows]


async def bank_records() -> list[tuple[ProviderRecord, datetime]]:
    """Confirmed receipts, refund instructions and sent payouts, with when each was recorded."""
    async with transaction_connection() as connection:
        receipts = await connection.fetch(
            "SELECT r.bank_transaction_ref, r.amount_minor, r.currency, r.confirmed_at, "
            "i.order_id, i.reference FROM bank_receipts r "
            "JOIN bank_invoices i ON i.id = r.invoice_id ORDER BY r.confirmed_at")
        refunds = await connection.fetch(
            "SELECT f.id, f.idempotency_key, f.amount_minor, f.currency, f.requested_at, "
            "i.order_id FROM bank_refunds f "
            "JOIN bank_invoices i ON i.id = f.invoice_id ORDER BY f.requested_at")
        payouts = await connection.fetch(
            "SELECT reference, bank_transaction_ref, currency, amount_minor, sent_at "
            "FROM operator_payouts WHERE sent_at IS NOT NULL ORDER BY sent_at")
    records = [(ProviderRecord(
        provider=BANK_TRANSFER, match_key=f"bank-receipt:{row['bank_transaction_ref']}",
        record=f"bank receipt on invoice {row['reference']}",
        provider_id=row["bank_transaction_ref"], reference=f"order:{row['order_id']}",
        currency=row["currency"].strip(), amount_minor=int(row["amount_minor"]),
        status="confirmed", money_moved=True), row["confirmed_at"]) for row in receipts]
    records += [(ProviderRecord(
        provider=BANK_TRANSFER, match_key=row["idempotency_key"],
        record="bank refund instruction", provider_id=str(row["id"]),
        reference=f"order:{row['order_id']}", currency=row["currency"].strip(),
        amount_minor=-int(row["amount_minor"]), status="instructed", money_moved=True),
        row["requested_at"]) for row in refunds]
    records += [(ProviderRecord(
        provider=BANK_TRANSFER, match_key=f"payout:{row['reference']}:sent",
        record="operator payout", provider_id=row["bank_transaction_ref"],
        reference=f"payout:{row['reference']}", currency=row["currency"].strip(),
        amount_minor=-int(row["amount_minor"]), status="sent", money_moved=True),
        row["sent_at"]) for row in payouts]
    return records


class StripeRecords(Protocol):
    """What reconciliation reads from Stripe."""

    async def payment_intent(self, intent_id: str) -> dict[str, Any] | None:
        """The PaymentIntent, or None if Stripe has no such intent."""
        ...

    async def refunds(self, intent_id: str) -> list[dict[str, Any]]:
        ...


class StripeApiRecords:
    """``StripeRecords`` through the Stripe adapter's SDK client."""

    def __init__(self, provider: StripeProvider) -> None:
        self._client = provider.client

    async def payment_intent(self, intent_id: str) -> dict[str, Any] | None:
        try:
            return plain(await self._client.v1.payment_intents.retrieve_async(intent_id))
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise

    async def refunds(self, intent_id: str) -> list[dict[str, Any]]:
        page = await self._client.v1.refunds.list_async(
            params={"payment_intent": intent_id, "limit": 100})
        return [plain(refund) async for refund in page.auto_paging_iter()]


def _intent_record(intent_id: str, intent: dict[str, Any] | None) -> ProviderRecord:
    key = f"{_STRIPE_PAYMENT_PREFIX}{intent_id}{_STRIPE_PAYMENT_SUFFIX}"
    if intent is None:
        return ProviderRecord(STRIPE, key, "PaymentIntent", intent_id, None, "", 0, ABSENT,
                              money_moved=False)
    payment = as_payment(intent)
    metadata = intent.get("metadata") or {}
    order_id = metadata.get("order_id")
    return ProviderRecord(
        provider=STRIPE, match_key=key, record="PaymentIntent", provider_id=intent_id,
        reference=None if order_id is None else f"order:{order_id}",
        currency=payment.amount.currency, amount_minor=payment.amount_received.amount_minor,
        status=str(intent["status"]), money_moved=payment.status is PaymentStatus.SUCCEEDED)


def _transfer_record(intent_id: str, intent: dict[str, Any] | None,
                     reference: str | None) -> ProviderRecord | None:
    """The operator's share a destination charge transferred, once it succeeded."""
    transfer = None if intent is None else connect_transfer_of(intent)
    if transfer is None:
        return None
    return ProviderRecord(
        provider=STRIPE, match_key=f"{_STRIPE_PAYMENT_PREFIX}{intent_id}{_STRIPE_TRANSFER_SUFFIX}",
        record=f"Connect transfer of PaymentIntent {intent_id}",
        provider_id=transfer.destination, reference=reference,
        currency=transfer.amount.currency, amount_minor=-transfer.amount.amount_minor,
        status="transferred", money_moved=True)


def _transfer_reversals_record(order_id: str, intent_id: str, intent: dict[str, Any],
                               moved: list[dict[str, Any]]) -> ProviderRecord | None:
    """The operator shares the refunds of a destination charge took back, each refund's share
    taken from what was left, in the order Stripe made them."""
    if connect_transfer_of(intent) is None:
        return None
    received = as_payment(intent).amount_received
    fee = Money(int(intent.get("application_fee_amount") or 0), received.currency)
    remaining = Split(received, fee, received - fee)
    reversed_minor = 0
    for refund in sorted(moved, key=lambda refund: (refund.get("created") or 0, refund["id"])):
        portion = refund_portion(remaining, Money(int(refund["amount"]), received.currency))
        remaining -= portion
        reversed_minor += portion.operator_revenue.amount_minor
    if not reversed_minor:
        return None
    return ProviderRecord(
        provider=STRIPE, match_key=f"{_TRANSFER_REVERSALS_PREFIX}{order_id}",
        record=f"transfer reversals of PaymentIntent {intent_id}",
        provider_id=",".join(str(refund["id"]) for refund in moved),
        reference=f"order:{order_id}", currency=received.currency, amount_minor=reversed_minor,
        status="reversed", money_moved=True)


def _moved_refunds(refunds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [refund for refund in refunds if refund.get("status") in _REFUND_MOVED]


def _refunds_record(order_id: str, intent_id: str,
                    moved: list[dict[str, Any]]) -> ProviderRecord | None:
    if not moved:
        return None
    currencies = {str(refund["currency"]).upper() for refund in moved}
    return ProviderRecord(
        provider=STRIPE, match_key=f"{_REFUNDS_PREFIX}{order_id}",
        record=f"refunds of PaymentIntent {intent_id}",
        provider_id=",".join(str(refund["id"]) for refund in moved),
        reference=f"order:{order_id}", currency=",".join(sorted(currencies)),
        amount_minor=-sum(int(refund["amount"]) for refund in moved), status="refunded",
        money_moved=True)


async def _stripe_attempts() -> list[Any]:
    async with transaction_connection() as connection:
        return list(await connection.fetch(
            "SELECT order_id, provider_payment_id, created_at FROM payment_attempts "
            "WHERE provider = $1 AND provider_payment_id IS NOT NULL ORDER BY created_at",
            STRIPE))


async def stripe_records(records: StripeRecords, intents: dict[str, str | None]
                         ) -> list[ProviderRecord]:
    """The intents (id → order id, if known) and their refunds as Stripe holds them."""
    found: list[ProviderRecord] = []
    for intent_id, order_id in sorted(intents.items()):
        intent = await records.payment_intent(intent_id)
        intent_record = _intent_record(intent_id, intent)
        found.append(intent_record)
        transfer = _transfer_record(intent_id, intent, intent_record.reference)
        if transfer is not None:
            found.append(transfer)
        # Only an intent that took money can have refunds (and localstripe fails listing the
        # refunds of one without a charge).
        if intent is None or as_payment(intent).status is not PaymentStatus.SUCCEEDED:
            continue
        order = order_id or (intent.get("metadata") or {}).get("order_id")
        if order is not None:
            moved = _moved_refunds(await records.refunds(intent_id))
            found += [record for record in (
                _refunds_record(str(order), intent_id, moved),
                _transfer_reversals_record(str(order), intent_id, intent, moved))
                if record is not None]
    return found


def _stripe_intent_of(match_key: str) -> str | None:
    if not match_key.startswith(_STRIPE_PAYMENT_PREFIX):
        return None
    for suffix in (_STRIPE_PAYMENT_SUFFIX, _STRIPE_TRANSFER_SUFFIX):
        if match_key.endswith(suffix):
            return match_key[len(_STRIPE_PAYMENT_PREFIX):-len(suffix)]
    return None


async def reconcile(period_start: datetime, period_end: datetime, *,
                    stripe_records_source: StripeRecords | None) -> ReconciliationReport:
    """Every difference for payments active in ``[period_start, period_end)``: booked in the
    journal or recorded at a provider in it. Stripe is skipped (and said so) when the exchange
    has no Stripe account configured."""

    def in_period(moment: datetime) -> bool:
        return period_start <= moment < period_end

    journal = await clearing_movements()
    keys = {(m.provider, m.match_key) for m in journal if in_period(m.posted_at)}
    provider: list[ProviderRecord] = []
    for record, recorded_at in await bank_records():
        provider.append(record)
        if in_period(recorded_at):
            keys.add((record.provider, record.match_key))
    notes: list[str] = []
    providers = [BANK_TRANSFER]
    if stripe_records_source is None:
        notes.append("Stripe is not configured: its clearing movements were not reconciled")
        journal = [m for m in journal if m.provider != STRIPE]
        keys = {key for key in keys if key[0] != STRIPE}
    else:
        providers.append(STRIPE)
        intents: dict[str, str | None] = {}
        attempts = await _stripe_attempts()
        order_of_intent = {row["provider_payment_id"]: row["order_id"] for row in attempts}
        intents.update({row["provider_payment_id"]: row["order_id"] for row in attempts
                        if in_period(row["created_at"])})
        for provider_name, key in list(keys):
            if provider_name != STRIPE:
                continue
            intent_id = _stripe_intent_of(key)
            if intent_id is not None:
                intents[intent_id] = order_of_intent.get(intent_id)
            elif key.startswith((_REFUNDS_PREFIX, _TRANSFER_REVERSALS_PREFIX)):
                order_id = key.removeprefix(_REFUNDS_PREFIX).removeprefix(
                    _TRANSFER_REVERSALS_PREFIX)
                intents.update({intent: order for intent, order in order_of_intent.items()
                                if order == order_id})
        fetched = await stripe_records(stripe_records_source, intents)
        provider += fetched
        keys |= {(record.provider, record.match_key) for record in fetched}
        notes.append("Stripe reconciled by PaymentIntents and Refunds (per-payment amounts "
                     "before Stripe's own fees), not balance transactions")
    scoped_journal = [m for m in journal if (m.provider, m.match_key) in keys]
    scoped_provider = [r for r in provider if (r.provider, r.match_key) in keys]
    return ReconciliationReport(
        period_start=period_start, period_end=period_end, providers=tuple(providers),
        journal_movements=len(scoped_journal), provider_records=len(scoped_provider),
        differences=tuple(compare(scoped_journal, scoped_provider)), notes=tuple(notes))
