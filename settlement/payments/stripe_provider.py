"""Stripe: one PaymentIntent per order attempt, created with the attempt's idempotency key.

When the operator has a connected account the PaymentIntent is a destination charge
(``transfer_data[destination]``): the buyer pays the exchange's platform, the operator's share is
transferred to its account, and ``application_fee_amount`` (the exchange's service fee, which
``fees.service_fee`` never lets exceed its cap) stays with the exchange. Refunds of such a charge
reverse the transfer and the application fee in proportion, so neither the exchange nor the
operator keeps money for a refunded sale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from settlement.errors import PaymentStateError
from settlement.money import Money
from settlement.payments.provider import (
    PaymentRequest,
    PaymentStatus,
    PreparedPayment,
    ProviderPayment,
    ProviderRefund,
)

PROVIDER_NAME = "stripe"

_STATUS = {
    "requires_payment_method": PaymentStatus.CREATED,
    "requires_confirmation": PaymentStatus.CREATED,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    # Authorised, not yet captured: money is not ours yet.
    "requires_capture": PaymentStatus.PROCESSING,
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CANCELED,
}


def plain(stripe_object: Any) -> dict[str, Any]:
    """A StripeObject as nested plain dicts (the SDK's objects are not dicts since v8)."""
    if isinstance(stripe_object, dict):
        return stripe_object
    converted: dict[str, Any] = stripe_object.to_dict()
    return converted


def payment_status(intent: dict[str, Any]) -> PaymentStatus:
    """Our status of a PaymentIntent; a declined attempt waiting for another card is FAILED."""
    status = _STATUS.get(str(intent["status"]), PaymentStatus.PROCESSING)
    if status is PaymentStatus.CREATED and intent.get("last_payment_error"):
        return PaymentStatus.FAILED
    return status


def as_payment(stripe_intent: Any) -> ProviderPayment:
    intent = plain(stripe_intent)
    currency = str(intent["currency"]).upper()
    status = payment_status(intent)
    received = intent.get("amount_received")
    if received is None:
        # Older API versions (and localstripe) omit amount_received.
        received = intent["amount"] if status is PaymentStatus.SUCCEEDED else 0
    return ProviderPayment(
        provider=PROVIDER_NAME,
        provider_payment_id=str(intent["id"]),
        status=status,
        amount=Money(int(intent["amount"]), currency),
        amount_received=Money(int(received), currency),
        client_secret=intent.get("client_secret"),
    )


@dataclass(frozen=True, slots=True)
class ConnectTransfer:
    """The operator's share a succeeded destination charge sent to its connected account."""

    destination: str
    amount: Money


def connect_transfer_of(stripe_intent: Any) -> ConnectTransfer | None:
    """What Stripe transferred for a succeeded destination charge: the amount received less the
    application fee it collects back for the exchange. None for an ordinary charge, one not
    succeeded, or one whose fee took the whole price."""
    intent = plain(stripe_intent)
    destination = (intent.get("transfer_data") or {}).get("destination")
    payment = as_payment(intent)
    if destination is None or payment.status is not PaymentStatus.SUCCEEDED:
        return None
    amount = payment.amount_received - Money(int(intent.get("application_fee_amount") or 0),
                                             payment.amount_received.currency)
    return ConnectTransfer(str(destination), amount) if amount.is_positive else None


class StripeProvider:
    """The Stripe adapter, on the official SDK's ``StripeClient`` (async methods over httpx)."""

    def __init__(self, api_key: str, *, api_base: str | None = None,
                 max_network_retries: int = 2) -> None:
        # The SDK retries network failures with the same idempotency key, which is safe.
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=stripe.HTTPXClient(),
            max_network_retries=max_network_retries,
        )

    @property
    def name(self) -> str:
        return PROVIDER_NAME

    @property
    def in_database(self) -> bool:
        return False

    async def prepare_payment(self, request: PaymentRequest) -> PreparedPayment:  # noqa: ARG002
        raise RuntimeError("a Stripe payment is created through Stripe's API, after the order "
                           "commits (create_payment)")

    @property
    def client(self) -> stripe.StripeClient:
        return self._client

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        params: dict[str, Any] = {
            "amount": request.amount.amount_minor,
            "currency": request.amount.currency.lower(),
            "payment_method_types": ["card"],
            "metadata": {
                "order_id": request.order_id,
                "buyer_org_id": request.buyer_org_id,
                "payment_key": request.idempotency_key,
            },
        }
        if request.connected_account is not None:
            assert request.application_fee is not None  # PaymentRequest keeps them together
            params["application_fee_amount"] = request.application_fee.amount_minor
            params["transfer_data"] = {"destination": request.connected_account}
        intent = await self._client.v1.payment_intents.create_async(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": request.idempotency_key},
        )
        return as_payment(intent)

    async def fetch_status(self, provider_payment_id: str) -> ProviderPayment:
        intent = await self._client.v1.payment_intents.retrieve_async(provider_payment_id)
        return as_payment(intent)

    async def refund(self, provider_payment_id: str, amount: Money, *, idempotency_key: str,
                     reason: str) -> ProviderRefund:
        intent = plain(await self._client.v1.payment_intents.retrieve_async(provider_payment_id))
        payment = as_payment(intent)
        amount.require_same_currency(payment.amount, field="currency")
        if not amount.is_positive or amount > payment.amount_received:
            raise PaymentStateError(
                f"cannot refund {amount.amount_minor} of a payment that received "
                f"{payment.amount_received.amount_minor}", field="amount_minor")
        params: dict[str, Any] = {
            "payment_intent": provider_payment_id,
            "amount": amount.amount_minor,
            "metadata": {"reason": reason[:500]},
        }
        if intent.get("transfer_data"):
            params["reverse_transfer"] = True
            params["refund_application_fee"] = True
        try:
            refund = await self._client.v1.refunds.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except (stripe.IdempotencyError, stripe.InvalidRequestError) as error:
            # A refund beyond what is left, or a key retried with another amount: a conflict
            # with the payment's state at Stripe, not a fault of ours.
            raise PaymentStateError(f"Stripe refused the refund: {error.user_message}",
                                    field="amount_minor") from error
        return ProviderRefund(
            provider=PROVIDER_NAME,
            provider_refund_id=str(refund.id),
            provider_payment_id=provider_payment_id,
            amount=Money(int(refund.amount), str(refund.currency).upper()),
            status=str(refund.status),
        )
