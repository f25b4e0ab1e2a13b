"""Partial refunds over HTTP: staff refund part of a paid order several times, never more than
was paid; the order shows what was refunded, each refund its shares and ledger leaf; by bank
transfer, and by a Stripe destination charge whose refunds carry the amount and reverse the
transfer and the application fee (the recording double asserts the exact parameters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from market.settings import Settings
from settlement import journal_store
from settlement.journal import EXCHANGE_REFUNDS, Account
from tests.e2e.recording_stripe_setup import (
    place,
    recording_stripe,
    recording_stripe_settings,
)
from tests.integration.market.orders_setup import Market, build_market, today
from tests.integration.settlement.stripe_double import RecordingStripe, sign

__all__ = ["recording_stripe"]  # the fixture, used by name

SECRET = "whsec_partial_refunds"
CONNECTED = "acct_1PartialRefunds"


@pytest.fixture
def settings(db: str, tmp_path: Path, recording_stripe: RecordingStripe) -> Settings:
    return recording_stripe_settings(db, tmp_path, recording_stripe, SECRET)


async def refund(client: httpx.AsyncClient, market: Market, order: dict[str, Any],
                 **body: Any) -> httpx.Response:
    return await client.post(f"/orders/{order['id']}/refund", headers=market.staff.headers,
                             json={"reason": "部分数据不可用", **body})


async def test_partial_bank_refunds_over_http(client: httpx.AsyncClient) -> None:
    market = await build_market()
    order = await place(client, market, "bank", "bank_transfer")
    paid = await client.post("/payments/bank-transfer/receipts", headers=market.staff.headers,
                             json={"reference": order["payment"]["reference"],
                                   "bank_transaction_ref": "ICBC-P1", "amount_minor": 5000,
                                   "received_on": today().isoformat()})
    assert paid.status_code == 200, paid.text
    accepted = await client.post(f"/orders/{order['id']}/accept", headers=market.buyer.headers)
    assert accepted.json()["state"] == "completed"

    for role in (market.buyer, market.operator, market.regulator):
        refused = await client.post(f"/orders/{order['id']}/refund", headers=role.headers,
                                    json={"reason": "x", "amount_minor": 1})
        assert refused.status_code == 403
    for bad in (0, -5, 5001, 1.5):
        rejected = await refund(client, market, order, amount_minor=bad)
        assert rejected.status_code in (400, 422), rejected.text
    over = await refund(client, market, order, amount_minor=5001)
    assert over.json()["field"] == "amount_minor"

    first = await refund(client, market, order, amount_minor=1200)
    assert first.status_code == 200, first.text
    assert (first.json()["state"], first.json()["refunded_minor"]) == ("completed", 1200)
    assert first.json()["grant"]["revoked_at"] is None
    second = await refund(client, market, order, amount_minor=800)
    assert second.json()["refunded_minor"] == 2000
    too_much = await refund(client, market, order, amount_minor=3001)
    assert too_much.status_code == 422
    assert too_much.json()["field"] == "amount_minor"

    listed = await client.get(f"/orders/{order['id']}/refunds", headers=market.operator.headers)
    assert listed.status_code == 200
    assert [(r["sequence"], r["amount_minor"], r["fee_minor"], r["operator_revenue_minor"])
            for r in listed.json()] == [(1, 1200, 60, 1140), (2, 800, 40, 760)]
    foreign = await client.get(f"/orders/{order['id']}/refunds",
                               headers=market.other_buyer.headers)
    assert foreign.status_code == 404

    rest = await refund(client, market, order)
    assert rest.json()["state"] == "refunded"
    assert rest.json()["refunded_minor"] == 5000
    assert rest.json()["grant"]["revoked_at"] is not None
    assert await journal_store.balance(EXCHANGE_REFUNDS, "CNY") == 250
    assert await journal_store.unbalanced_currencies() == {}


async def test_partial_refunds_of_a_destination_charge(
        client: httpx.AsyncClient, recording_stripe: RecordingStripe) -> None:
    market = await build_market()
    recorded = await client.put(
        f"/operators/{market.operator.organisation.id}/connected-account",
        json={"account_id": CONNECTED}, headers=market.staff.headers)
    assert recorded.status_code == 200, recorded.text
    order = await place(client, market, "card", "card")
    intent_id = order["payment"]["reference"]
    recording_stripe.succeed(intent_id)
    body = json.dumps({"id": "evt_partial_paid", "object": "event",
                       "type": "payment_intent.succeeded",
                       "data": {"object": recording_stripe.intents[intent_id]}}).encode()
    webhook = await client.post("/payments/stripe/webhook", content=body,
                                headers={"Stripe-Signature": sign(body, SECRET),
                                         "Content-Type": "application/json"})
    assert webhook.status_code == 200, webhook.text

    first = await refund(client, market, order, amount_minor=1500)
    assert first.status_code == 200, first.text
    second = await refund(client, market, order, amount_minor=2500)
    assert second.json()["state"] == "delivered"
    sent = recording_stripe.of("POST", "/v1/refunds")
    assert [(r.idempotency_key, r.form) for r in sent] == [
        (f"order:{order['id']}:refund:{n}", {
            "payment_intent": intent_id, "amount": amount,
            "metadata[reason]": "部分数据不可用",
            # Stripe reverses the transfer and refunds the application fee in proportion.
            "reverse_transfer": "true", "refund_application_fee": "true"})
        for n, amount in ((1, "1500"), (2, "2500"))]
    assert recording_stripe.refunded[intent_id] == 4000
    last = await refund(client, market, order)
    assert last.json()["state"] == "refunded"
    assert recording_stripe.of("POST", "/v1/refunds")[-1].form["amount"] == "1000"
    assert recording_stripe.refunded[intent_id] == 5000
    assert await journal_store.balance(Account.clearing("stripe"), "CNY") == 0
    assert await journal_store.balance(Account.buyer(str(market.buyer.organisation.id)),
                                       "CNY") == 0
