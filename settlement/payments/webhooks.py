"""Stripe webhooks (CONVENTIONS 6): verify the signature on the raw body, de-duplicate by event
id, dispatch with ``match event["type"]``, and only ever move a payment forward, so an event that
arrives late or twice changes nothing.

``receive_stripe_webhook`` is what an HTTP endpoint calls with the raw body and the
``Stripe-Signature`` header; it answers a ``WebhookOutcome`` for the orders use case to act on.
A confirmed payment is posted to the journal (and so the ledger) here, in the same transaction
as the de-duplication record, with, for a destination charge, the transfer of the operator's
share Stripe made at the same moment; moving the order is the orders use case's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from settlement import journal_store
from settlement.journal import connect_transfer, order_payment_received
from settlement.money import Money
from settlement.payments import attempts
from settlement.payments.provider import PaymentStatus
from settlement.payments.stripe_provider import (
    PROVIDER_NAME,
    as_payment,
    connect_transfer_of,
    plain,
)
from settlement.tables import transaction_connection


class WebhookVerificationError(Exception):
    """The body was not signed with our secret (or is not an event): answer 400."""


class WebhookConfigurationError(RuntimeError):
    """No signing secret is configured: refuse every event rather than trust unsigned ones."""


@dataclass(frozen=True, slots=True)
class PaymentUpdated:
    """A payment moved forward to ``status``; ``order_id`` is the order to move on."""

    event_id: str
    order_id: str
    provider_payment_id: str
    status: PaymentStatus
    amount_received: Money


@dataclass(frozen=True, slots=True)
class RefundReported:
    event_id: str
    order_id: str | None
    provider_payment_id: str | None
    provider_refund_id: str
    amount: Money
    status: str


@dataclass(frozen=True, slots=True)
class AlreadyProcessed:
    event_id: str


@dataclass(frozen=True, slots=True)
class Stale:
    """A valid event that would move the payment backwards or sideways: recorded, ignored."""

    event_id: str
    provider_payment_id: str


@dataclass(frozen=True, slots=True)
class UnknownPayment:
    """An event about a PaymentIntent no attempt of ours made: not recorded, so a redelivery
    after the attempt exists is processed."""

    event_id: str
    provider_payment_id: str


@dataclass(frozen=True, slots=True)
class Ignored:
    event_id: str
    event_type: str


WebhookOutcome = (
    PaymentUpdated | RefundReported | AlreadyProcessed | Stale | UnknownPayment | Ignored
)

_PAYMENT_EVENTS = {
    "payment_intent.succeeded": PaymentStatus.SUCCEEDED,
    "payment_intent.processing": PaymentStatus.PROCESSING,
    "payment_intent.requires_action": PaymentStatus.REQUIRES_ACTION,
    "payment_intent.payment_failed": PaymentStatus.FAILED,
    "payment_intent.canceled": PaymentStatus.CANCELED,
}


def verify_stripe_event(payload: bytes, signature_header: str | None,
                        secret: str | None) -> stripe.Event:
    """The event, if ``payload`` (the raw, unparsed body) carries a valid, fresh signature."""
    if not secret:
        raise WebhookConfigurationError("STRIPE_WEBHOOK_SECRET is not set; refusing the event")
    if not signature_header:
        raise WebhookVerificationError("missing Stripe-Signature header")
    try:
        event: stripe.Event = stripe.Webhook.construct_event(payload, signature_header, secret)
    except stripe.SignatureVerificationError as error:
        raise WebhookVerificationError("invalid Stripe signature") from error
    except ValueError as error:
        raise WebhookVerificationError("the body is not a Stripe event") from error
    return event


async def _mark_processed(connection: Any, event_id: str, event_type: str,
                          outcome: str) -> bool:
    row = await connection.fetchrow(
        "INSERT INTO processed_webhook_events (provider, event_id, event_type, outcome) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (provider, event_id) DO NOTHING RETURNING event_id",
        PROVIDER_NAME, event_id, event_type, outcome)
    return row is not None


async def _payment_event(event_id: str, intent: Any,
                         status: PaymentStatus) -> PaymentUpdated | Stale | UnknownPayment:
    payment = as_payment(intent)
    attempt = await attempts.attempt_for_payment(PROVIDER_NAME, payment.provider_payment_id)
    if attempt is None:
        # The crash window: the PaymentIntent exists but its id never reached our attempt row.
        # The metadata names the attempt's key; adopt the id if that attempt is still unset.
        key = (intent.get("metadata") or {}).get("payment_key")
        if key:
            async with transaction_connection() as connection:
                await connection.execute(
                    "UPDATE payment_attempts SET provider_payment_id = $2, updated_at = now() "
                    "WHERE idempotency_key = $1 AND provider = $3 "
                    "AND provider_payment_id IS NULL",
                    key, payment.provider_payment_id, PROVIDER_NAME)
            attempt = await attempts.attempt_for_payment(PROVIDER_NAME,
                                                         payment.provider_payment_id)
    if attempt is None:
        return UnknownPayment(event_id, payment.provider_payment_id)
    moved_attempt, moved = await attempts.advance_status(PROVIDER_NAME,
                                                         payment.provider_payment_id, status)
    if not moved or moved_attempt is None:
        return Stale(event_id, payment.provider_payment_id)
    if status is PaymentStatus.SUCCEEDED:
        received = payment.amount_received if payment.amount_received.is_positive \
            else payment.amount
        await journal_store.post(
            order_payment_received(
                idempotency_key=f"stripe:{payment.provider_payment_id}:succeeded",
                reference=f"order:{attempt.order_id}",
                buyer_org_id=str((intent.get("metadata") or {})["buyer_org_id"]),
                provider=PROVIDER_NAME, amount=received),
            actor=f"stripe:{event_id}")
        transfer = connect_transfer_of(intent)
        if transfer is not None:
            # A destination charge: Stripe sent the operator's share on at once, so the
            # exchange's balance keeps only the fee (settlement.journal, destination charges).
            await journal_store.post(
                connect_transfer(
                    idempotency_key=f"stripe:{payment.provider_payment_id}:transferred",
                    reference=f"order:{attempt.order_id}",
                    connected_account=transfer.destination, provider=PROVIDER_NAME,
                    amount=transfer.amount),
                actor=f"stripe:{event_id}")
    return PaymentUpdated(event_id, attempt.order_id, payment.provider_payment_id, status,
                          payment.amount_received)


async def _refund_event(event_id: str, refund: Any) -> RefundReported | UnknownPayment:
    intent_id = refund.get("payment_intent")
    attempt = None if intent_id is None else await attempts.attempt_for_payment(
        PROVIDER_NAME, str(intent_id))
    if attempt is None:
        return UnknownPayment(event_id, str(intent_id))
    return RefundReported(event_id, attempt.order_id, str(intent_id), str(refund["id"]),
                          Money(int(refund["amount"]), str(refund["currency"]).upper()),
                          str(refund.get("status")))


async def handle_stripe_event(event: Any) -> WebhookOutcome:
    """Apply one verified event exactly once; the de-duplication record and every effect of the
    event commit together, so a crash midway leaves the event to be redelivered whole."""
    payload = plain(event)
    event_id = str(payload["id"])
    event_type = str(payload["type"])
    data_object = payload["data"]["object"]
    async with transaction_connection() as connection:
        # Taken first: a concurrent delivery of the same event waits here, then finds it done.
        if not await _mark_processed(connection, event_id, event_type, "pending"):
            return AlreadyProcessed(event_id)
        outcome: WebhookOutcome
        match event_type:
            case _ if event_type in _PAYMENT_EVENTS:
                outcome = await _payment_event(event_id, data_object, _PAYMENT_EVENTS[event_type])
            case "refund.created" | "refund.updated" | "charge.refund.updated":
                outcome = await _refund_event(event_id, data_object)
            case _:
                outcome = Ignored(event_id, event_type)
        if isinstance(outcome, UnknownPayment):
            # Roll the de-duplication record back with the rest: a redelivery is processed anew.
            raise _UnrecordedEventError(outcome)
        return outcome


class _UnrecordedEventError(Exception):
    def __init__(self, outcome: UnknownPayment) -> None:
        super().__init__(outcome.event_id)
        self.outcome = outcome


async def receive_stripe_webhook(payload: bytes, signature_header: str | None,
                                 secret: str | None) -> WebhookOutcome:
    """Verify, then handle: the whole job of a webhook endpoint, minus the HTTP."""
    event = verify_stripe_event(payload, signature_header, secret)
    try:
        return await handle_stripe_event(event)
    except _UnrecordedEventError as unrecorded:
        return unrecorded.outcome
