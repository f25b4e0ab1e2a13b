"""Money that arrives after an order ended, over HTTP: a bank transfer for a cancelled or
expired order is recorded as the buyer's credit (never a payment), listed for staff and
refunded by them; a card payment for a cancelled order is refunded automatically, once; an
over-payment stays owed to the buyer even after the order itself is refunded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from market.settings import Settings
from market.trading import late_payments, orders
from settlement import journal_store
from settlement.journal import Account
from tests.e2e.recording_stripe_setup import (
    place,
    recording_stripe,
    recording_stripe_settings,
)
from tests.integration.market.orders_setup import Market, build_market, today
from tests.integration.settlement.stripe_double import RecordingStripe, sign

__all__ = ["recording_stripe"]  # the fixture, used by name

SECRET = "whsec_late_money"
BANK = Account.clearing("bank_transfer")


@pytest.fixture
def settings(db: str, tmp_path: Path, recording_stripe: RecordingStripe) -> Settings:
    return recording_stripe_settings(db, tmp_path, recording_stripe, SECRET)


async def receipt(client: httpx.AsyncClient, market: Market, order: dict[str, Any],
                  line: str, amount_minor: int) -> dict[str, Any]:
    confirmed = await client.post(
        "/payments/bank-transfer/receipts", headers=market.staff.headers,
        json={"reference": order["payment"]["reference"], "bank_transaction_ref": line,
              "amount_minor": amount_minor, "received_on": today().isoformat()})
    assert confirmed.status_code == 200, confirmed.text
    body: dict[str, Any] = confirmed.json()
    return body


def buyer_account(market: Market) -> Account:
    return Account.buyer(str(market.buyer.organisation.id))


async def test_bank_money_for_a_cancelled_order_is_credit_staff_refund(
        client: httpx.AsyncClient) -> None:
    market = await build_market()
    order = await place(client, market, "cancelled")
    cancelled = await client.post(f"/orders/{order['id']}/cancel", headers=market.buyer.headers)
    assert cancelled.json()["state"] == "cancelled"

    late = await receipt(client, market, order, "ICBC-LATE-1", 5000)
    assert (late["paid"], late["closed"], late["credit_minor"], late["order"]) == (
        False, True, 5000, None)
    seen = await client.get(f"/orders/{order['id']}", headers=market.buyer.headers)
    assert seen.json()["state"] == "cancelled"
    # Recorded: the bank holds it and the journal owes it to the buyer.
    assert await journal_store.balance(BANK, "CNY") == 5000
    assert await journal_store.balance(buyer_account(market), "CNY") == -5000

    owed = await client.get("/payments/bank-transfer/credits", headers=market.staff.headers)
    assert [(c["reference"], c["credit_minor"]) for c in owed.json()] == [
        (order["payment"]["reference"], 5000)]
    denied = await client.get("/payments/bank-transfer/credits", headers=market.buyer.headers)
    assert denied.status_code == 403
    path = f"/payments/bank-transfer/invoices/{order['payment']['reference']}/refund-credit"
    refunded = await client.post(path, headers=market.staff.headers)
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["credit_minor"] == 0
    again = await client.post(path, headers=market.staff.headers)
    assert again.status_code == 409
    bad = await client.post("/payments/bank-transfer/invoices/PDX-XX/refund-credit",
                            headers=market.staff.headers)
    assert bad.status_code == 422
    assert bad.json()["field"] == "reference"
    assert await journal_store.balance(BANK, "CNY") == 0
    assert await journal_store.balance(buyer_account(market), "CNY") == 0
    assert (await client.get("/payments/bank-transfer/credits",
                             headers=market.staff.headers)).json() == []


async def test_bank_money_for_an_expired_order_is_credit(
        client: httpx.AsyncClient, settings: Settings) -> None:
    market = await build_market()
    order = await place(client, market, "expired")
    later = datetime.now(UTC) + timedelta(days=30)
    expired = await orders.expire_unpaid(orders.config_from_settings(settings), now=later)
    assert [str(order_id) for order_id in expired] == [order["id"]]
    late = await receipt(client, market, order, "ICBC-LATE-2", 3000)
    assert (late["paid"], late["closed"], late["credit_minor"]) == (False, True, 3000)
    seen = await client.get(f"/orders/{order['id']}", headers=market.buyer.headers)
    assert seen.json()["state"] == "expired"


async def test_over_payment_stays_owed_after_the_order_is_refunded(
        client: httpx.AsyncClient) -> None:
    market = await build_market()
    order = await place(client, market, "over")
    paid = await receipt(client, market, order, "ICBC-OVER", 6000)
    assert (paid["paid"], paid["credit_minor"]) == (True, 1000)
    refunded = await client.post(f"/orders/{order['id']}/refund", headers=market.staff.headers,
                                 json={"reason": "全额退款"})
    assert refunded.json()["state"] == "refunded"
    owed = await client.get("/payments/bank-transfer/credits", headers=market.staff.headers)
    assert [c["credit_minor"] for c in owed.json()] == [1000]
    path = f"/payments/bank-transfer/invoices/{order['payment']['reference']}/refund-credit"
    assert (await client.post(path, headers=market.staff.headers)).status_code == 200
    assert await journal_store.balance(BANK, "CNY") == 0
    assert await journal_store.balance(buyer_account(market), "CNY") == 0


async def test_card_money_for_a_cancelled_order_is_refunded_automatically(
        client: httpx.AsyncClient, recording_stripe: RecordingStripe,
        settings: Settings) -> None:
    market = await build_market()
    order = await place(client, market, "card", method="card")
    cancelled = await client.post(f"/orders/{order['id']}/cancel", headers=market.buyer.headers)
    assert cancelled.json()["state"] == "cancelled"
    intent_id = order["payment"]["reference"]
    recording_stripe.succeed(intent_id)
    body = json.dumps({"id": "evt_late_card", "object": "event",
                       "type": "payment_intent.succeeded",
                       "data": {"object": recording_stripe.intents[intent_id]}}).encode()
    for _ in range(2):
        delivered = await client.post("/payments/stripe/webhook", content=body,
                                      headers={"Stripe-Signature": sign(body, SECRET),
                                               "Content-Type": "application/json"})
        assert delivered.status_code == 200, delivered.text
    [sent] = recording_stripe.of("POST", "/v1/refunds")
    assert sent.idempotency_key == late_payments.unapplied_refund_key(intent_id)
    assert (sent.form["payment_intent"], sent.form["amount"]) == (intent_id, "5000")
    seen = await client.get(f"/orders/{order['id']}", headers=market.buyer.headers)
    assert seen.json()["state"] == "cancelled"
    stripe_clearing = Account.clearing("stripe")
    assert await journal_store.balance(stripe_clearing, "CNY") == 0
    assert await journal_store.balance(buyer_account(market), "CNY") == 0
    assert await late_payments.sweep(orders.config_from_settings(settings)) == 0
    assert len(recording_stripe.of("POST", "/v1/refunds")) == 1
    assert await journal_store.unbalanced_currencies() == {}
