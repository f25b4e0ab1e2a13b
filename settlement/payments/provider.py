"""The payment provider interface (CONVENTIONS 5): bank transfer by default, Stripe when keys are
set. Both adapters take the caller's idempotency key, so a retried call never charges twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ledger.canonical import canonical_json
from settlement.errors import InvalidMoneyError, PaymentStateError
from settlement.money import Money


class PaymentStatus(StrEnum):
    """A payment's state; it only ever moves forward (``can_move_to``)."""

    CREATED = "created"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED)

    def can_move_to(self, new: PaymentStatus) -> bool:
        """Forward moves only, so an event delivered late or twice cannot undo a newer state.

        A failed attempt may still succeed (the buyer retries with another card on the same
        PaymentIntent); a succeeded or canceled one is final.
        """
        if self is new or self.is_final:
            return False
        return _RANK[new] > _RANK[self] or (self is PaymentStatus.FAILED and new in (
            PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED,
            PaymentStatus.CANCELED))


_RANK = {
    PaymentStatus.CREATED: 0,
    PaymentStatus.REQUIRES_ACTION: 1,
    PaymentStatus.PROCESSING: 2,
    PaymentStatus.FAILED: 3,
    PaymentStatus.SUCCEEDED: 4,
    PaymentStatus.CANCELED: 4,
}


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """One order's payment. ``connected_account``: the operator's Stripe account, when it has
    one; then ``application_fee`` (the exchange's service fee, never above its cap) stays with
    the exchange and the rest goes to the operator."""

    order_id: str
    buyer_org_id: str
    amount: Money
    idempotency_key: str
    description: str = ""
    connected_account: str | None = None
    application_fee: Money | None = None

    def __post_init__(self) -> None:
        if not self.amount.is_positive:
            raise InvalidMoneyError("a payment must be positive", field="amount_minor")
        if (self.connected_account is None) != (self.application_fee is None):
            raise PaymentStateError(
                "a connected account and an application fee go together",
                field="application_fee_minor",
            )
        if self.application_fee is not None:
            self.application_fee.require_same_currency(self.amount, field="currency")
            if self.application_fee.is_negative or self.application_fee > self.amount:
                raise InvalidMoneyError(
                    "the application fee must be between zero and the amount",
                    field="application_fee_minor",
                )
        if not self.idempotency_key or len(self.idempotency_key) > 255:
            raise PaymentStateError("idempotency key must be 1 to 255 characters",
                                    field="idempotency_key")

    def fingerprint(self) -> str:
        """SHA-256 of the request, so that a reused key with a different request is caught."""
        return hashlib.sha256(canonical_json({
            "order_id": self.order_id,
            "buyer_org_id": self.buyer_org_id,
            "amount_minor": str(self.amount.amount_minor),
            "currency": self.amount.currency,
            "connected_account": self.connected_account,
            "application_fee_minor": None if self.application_fee is None
            else str(self.application_fee.amount_minor),
        })).hexdigest()


@dataclass(frozen=True, slots=True)
class ProviderPayment:
    """The provider's view of a payment: its id there, status, and what it took in so far."""

    provider: str
    provider_payment_id: str
    status: PaymentStatus
    amount: Money
    amount_received: Money
    # Stripe: the PaymentIntent's client secret for the buyer's browser; bank transfer: the
    # invoice reference the buyer quotes on the transfer.
    client_secret: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedPayment:
    """The payment of a provider ``in_database``, made but not written: the row that records it
    (a bank transfer invoice, as the ``settlement_bank_invoice`` value), for the order's own
    statement to write (``settlement.payments.attempts.PaymentStart``)."""

    payment: ProviderPayment
    row: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    provider: str
    provider_refund_id: str
    provider_payment_id: str
    amount: Money
    status: str


class PaymentProvider(Protocol):
    """What the orders use case needs from any way of taking money."""

    @property
    def name(self) -> str:
        """Stable provider name; also the owner of its ``clearing:<name>`` journal account."""
        ...

    @property
    def in_database(self) -> bool:
        """True when creating a payment only writes this exchange's own database (no outside
        service is called), so it may run inside the order's transaction and commit with it."""
        ...

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """Start (or, for a repeated idempotency key, find again) the payment for one order."""
        ...

    async def prepare_payment(self, request: PaymentRequest) -> PreparedPayment:
        """Only for a provider ``in_database``: the new payment of a new order, for the order's
        own statement to write with it (a retry goes through ``create_payment``)."""
        ...

    async def refund(self, provider_payment_id: str, amount: Money, *, idempotency_key: str,
                     reason: str) -> ProviderRefund:
        """Give ``amount`` back to the buyer; for Connect charges, reverse the transfer and the
        application fee in proportion."""
        ...

    async def fetch_status(self, provider_payment_id: str) -> ProviderPayment:
        ...
