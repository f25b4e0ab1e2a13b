"""The real Stripe SDK against localstripe: a PaymentIntent per order, confirmed by the buyer,
its signed webhook verified on the raw body, de-duplicated, applied once and only forward."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from stripe_double import LocalStripe, WebhookInbox, sign

from settlement import journal_store
from settlement.journal import Account
from settlement.money import Money
from settlement.payments import attempts
from settlement.payments.provider import PaymentRequest, PaymentStatus
from settlement.payments.stripe_provider import StripeProvider
from settlement.payments.webhooks import (
    AlreadyProcessed,
    PaymentUpdated,
    Stale,
    UnknownPayment,
    WebhookConfigurationError,
    WebhookVerificationError,
    receive_stripe_webhook,
)

SECRET = "whsec_test_localstripe"
STRIPE = Account.clearing("stripe")


async def _register(localstripe: LocalStripe, inbox: WebhookInbox) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{localstripe.url}/_config/webhooks/settlement",
                                     data={"url": inbox.url, "secret": SECRET})
        response.raise_for_status()


async def _pay_as_the_buyer(provider: StripeProvider, intent_id: str) -> None:
    """What the buyer's browser does with the client secret: attach a card and confirm."""
    method = await provider.client.v1.payment_methods.create_async(params={
        "type": "card",
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    })
    await provider.client.v1.payment_intents.update_async(
        intent_id, params={"payment_method": method.id})
    await provider.client.v1.payment_intents.confirm_async(intent_id)


def _forged(event: dict[str, Any], event_id: str, event_type: str) -> bytes:
    return json.dumps({**event, "id": event_id, "type": event_type}).encode()


async def test_payment_webhook_is_verified_deduplicated_and_forward_only(
        db: str, localstripe: LocalStripe, webhook_inbox: WebhookInbox) -> None:
    await _register(localstripe, webhook_inbox)
    provider = StripeProvider("sk_test_local", api_base=localstripe.url)
    request = PaymentRequest(order_id="order-7", buyer_org_id="buyer-7",
                             amount=Money(12_345, "CNY"),
                             idempotency_key=attempts.payment_idempotency_key("order-7"))
    payment = await attempts.start_payment(provider, request)
    assert payment.status is PaymentStatus.CREATED
    assert payment.client_secret

    await _pay_as_the_buyer(provider, payment.provider_payment_id)
    delivery = await webhook_inbox.wait_for("payment_intent.succeeded",
                                            payment.provider_payment_id)

    outcome = await receive_stripe_webhook(delivery.body, delivery.signature, SECRET)
    assert isinstance(outcome, PaymentUpdated)
    assert (outcome.order_id, outcome.status) == ("order-7", PaymentStatus.SUCCEEDED)
    assert await journal_store.balance(STRIPE, "CNY") == 12_345
    assert await journal_store.balance(Account.buyer("buyer-7"), "CNY") == -12_345

    # Delivered twice: applied once.
    again = await receive_stripe_webhook(delivery.body, delivery.signature, SECRET)
    assert isinstance(again, AlreadyProcessed)
    # Late events for the same payment (new ids, validly signed) cannot move it backwards.
    for event_type in ("payment_intent.processing", "payment_intent.payment_failed"):
        body = _forged(delivery.event, f"evt_late_{event_type}", event_type)
        late = await receive_stripe_webhook(body, sign(body, SECRET), SECRET)
        assert isinstance(late, Stale)
    assert await journal_store.balance(STRIPE, "CNY") == 12_345
    assert (await attempts.attempts_for_order("order-7"))[0].status is PaymentStatus.SUCCEEDED
    assert (await provider.fetch_status(payment.provider_payment_id)).status \
        is PaymentStatus.SUCCEEDED

    refund = await provider.refund(payment.provider_payment_id, Money(2_345, "CNY"),
                                   idempotency_key="order:order-7:refund:1", reason="partial")
    assert (refund.amount, refund.status) == (Money(2_345, "CNY"), "succeeded")


async def test_forged_replayed_or_unsigned_events_are_refused(
        db: str, localstripe: LocalStripe) -> None:
    body = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
                       "data": {"object": {"id": "pi_x", "object": "payment_intent", "amount": 100,
                                           "currency": "cny", "status": "succeeded",
                                           "metadata": {}}}}).encode()
    good = sign(body, SECRET)
    with pytest.raises(WebhookVerificationError):
        await receive_stripe_webhook(body.replace(b"pi_x", b"pi_y"), good, SECRET)
    with pytest.raises(WebhookVerificationError):
        await receive_stripe_webhook(body, sign(body, "whsec_someone_else"), SECRET)
    # Signed an hour ago: outside the SDK's five-minute tolerance, so a replay is refused.
    stale_signature = sign(body, SECRET, int(time.time()) - 3600)
    with pytest.raises(WebhookVerificationError):
        await receive_stripe_webhook(body, stale_signature, SECRET)
    with pytest.raises(WebhookVerificationError):
        await receive_stripe_webhook(body, None, SECRET)
    with pytest.raises(WebhookConfigurationError):
        await receive_stripe_webhook(body, good, None)
    # A valid event about a payment we never made is not recorded, so nothing blocks a later one.
    unknown = await receive_stripe_webhook(body, good, SECRET)
    assert isinstance(unknown, UnknownPayment)
    assert isinstance(await receive_stripe_webhook(body, good, SECRET), UnknownPayment)
