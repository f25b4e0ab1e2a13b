"""The real Stripe SDK against a recording double: the exact Connect parameters for destination
charges and refunds, and a crash between commit and provider call that must not charge twice."""

from __future__ import annotations

import json

import pytest
from stripe_double import RecordingStripe, sign

from settlement import journal_store
from settlement.fees import ServiceFeePolicy, service_fee
from settlement.journal import Account
from settlement.money import Money
from settlement.payments import attempts
from settlement.payments.provider import PaymentRequest, PaymentStatus
from settlement.payments.stripe_provider import StripeProvider
from settlement.payments.webhooks import PaymentUpdated, receive_stripe_webhook

SECRET = "whsec_test_connect"
POLICY = ServiceFeePolicy(rate_bps=500, cap=Money(300, "CNY"))


def connect_request(order_id: str = "order-1") -> PaymentRequest:
    price = Money(10_000, "CNY")
    return PaymentRequest(order_id=order_id, buyer_org_id="buyer-1", amount=price,
                          idempotency_key=attempts.payment_idempotency_key(order_id),
                          connected_account="acct_operator1",
                          application_fee=service_fee(price, POLICY))


async def test_destination_charge_sends_the_connect_parameters(
        db: str, recording_stripe: RecordingStripe) -> None:
    provider = StripeProvider("sk_test_double", api_base=recording_stripe.url)
    payment = await attempts.start_payment(provider, connect_request())
    assert payment.status is PaymentStatus.CREATED
    [create] = recording_stripe.of("POST", "/v1/payment_intents")
    assert create.idempotency_key == "order:order-1:payment:1"
    assert create.form["amount"] == "10000"
    assert create.form["currency"] == "cny"
    # 5% of 100.00 is 5.00, capped at 3.00: the fee never exceeds its cap.
    assert create.form["application_fee_amount"] == "300"
    assert create.form["transfer_data[destination]"] == "acct_operator1"
    assert create.form["metadata[order_id]"] == "order-1"
    assert "on_behalf_of" not in create.form


async def test_refund_of_a_destination_charge_reverses_transfer_and_fee(
        db: str, recording_stripe: RecordingStripe) -> None:
    provider = StripeProvider("sk_test_double", api_base=recording_stripe.url)
    payment = await attempts.start_payment(provider, connect_request())
    recording_stripe.succeed(payment.provider_payment_id)
    refund = await provider.refund(payment.provider_payment_id, Money(4_000, "CNY"),
                                   idempotency_key="order:order-1:refund:1", reason="defect")
    assert (refund.amount, refund.status) == (Money(4_000, "CNY"), "succeeded")
    [sent] = recording_stripe.of("POST", "/v1/refunds")
    assert sent.idempotency_key == "order:order-1:refund:1"
    assert sent.form["payment_intent"] == payment.provider_payment_id
    assert sent.form["amount"] == "4000"
    assert sent.form["reverse_transfer"] == "true"
    assert sent.form["refund_application_fee"] == "true"


async def test_a_crash_between_commit_and_provider_call_never_charges_twice(
        db: str, recording_stripe: RecordingStripe) -> None:
    provider = StripeProvider("sk_test_double", api_base=recording_stripe.url)
    request = connect_request()
    # The order's transaction committed the attempt; the provider call went out, and the
    # process died before the PaymentIntent id was stored.
    await attempts.record_attempt(provider.name, request)
    lost = await provider.create_payment(request)
    assert (await attempts.attempts_for_order("order-1"))[0].provider_payment_id is None

    retried = await attempts.start_payment(provider, request)
    again = await attempts.start_payment(provider, request)
    assert retried.provider_payment_id == lost.provider_payment_id == again.provider_payment_id
    creates = recording_stripe.of("POST", "/v1/payment_intents")
    assert [c.idempotency_key for c in creates] == [request.idempotency_key] * 2
    assert len(recording_stripe.intents) == 1
    # The third call found the stored id and only looked the payment up.
    assert len(recording_stripe.of("GET", f"/v1/payment_intents/{lost.provider_payment_id}")) == 1
    [attempt] = await attempts.attempts_for_order("order-1")
    assert attempt.provider_payment_id == lost.provider_payment_id


async def test_a_success_event_in_the_crash_window_finds_its_attempt(
        db: str, recording_stripe: RecordingStripe) -> None:
    provider = StripeProvider("sk_test_double", api_base=recording_stripe.url)
    request = connect_request()
    await attempts.record_attempt(provider.name, request)
    lost = await provider.create_payment(request)
    recording_stripe.succeed(lost.provider_payment_id)
    body = json.dumps({
        "id": "evt_crash_1", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": recording_stripe.intents[lost.provider_payment_id]},
    }).encode()
    outcome = await receive_stripe_webhook(body, sign(body, SECRET), SECRET)
    assert isinstance(outcome, PaymentUpdated)
    assert (outcome.order_id, outcome.status) == ("order-1", PaymentStatus.SUCCEEDED)
    # A destination charge: Stripe sent price − fee on to the operator at once, so the
    # exchange's Stripe balance holds the fee and the transfer is booked to the account.
    assert await journal_store.balance(Account.clearing("stripe"), "CNY") == 300
    assert await journal_store.balance(Account.connect_transferred("acct_operator1"),
                                       "CNY") == 9_700
    assert await journal_store.balance(Account.buyer("buyer-1"), "CNY") == -10_000
    [attempt] = await attempts.attempts_for_order("order-1")
    assert attempt.provider_payment_id == lost.provider_payment_id


def test_a_request_pairs_connected_account_with_fee() -> None:
    from settlement.errors import PaymentStateError  # noqa: PLC0415

    with pytest.raises(PaymentStateError):
        PaymentRequest(order_id="o", buyer_org_id="b", amount=Money(1, "CNY"),
                       idempotency_key="k", connected_account="acct_x")
