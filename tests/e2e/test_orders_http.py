"""Orders over HTTP: the Idempotency-Key contract, quotes, bank transfer confirmed by staff,
delivery, acceptance, tenant isolation, and the Stripe webhook refusing unsigned bodies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from market.settings import Settings
from market.trading.order_tables import OrderRow
from tests.integration.market.orders_setup import Market, build_market, today


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, request_max_body_bytes=64 * 1024,
                    stripe_webhook_secret="whsec_test_only")


def body(market: Market, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "product_id": str(market.product_id), "purpose": "industry", "unit": "per_call",
        "quantity": 10, "terms_accepted": True,
        "term": {"start": today().isoformat(),
                 "end": (today() + timedelta(days=30)).isoformat()}}
    data.update(overrides)
    return data


def headers(market: Market, key: str | None) -> dict[str, str]:
    result = dict(market.buyer.headers)
    if key is not None:
        result["Idempotency-Key"] = key
    return result


async def test_place_pay_deliver_accept_over_http(client: httpx.AsyncClient) -> None:
    market = await build_market()
    quote = await client.post("/orders/quote", json=body(market), headers=market.buyer.headers)
    assert quote.status_code == 200, quote.text
    assert (quote.json()["price_minor"], quote.json()["fee_minor"],
            quote.json()["cap_minor"]) == (5000, 250, 600)
    assert await OrderRow.count().run() == 0

    missing = await client.post("/orders", json=body(market), headers=headers(market, None))
    assert missing.status_code == 422
    assert missing.json()["field"] == "Idempotency-Key"
    first = await client.post("/orders", json=body(market), headers=headers(market, "k1"))
    assert first.status_code == 201, first.text
    replay = await client.post("/orders", json=body(market), headers=headers(market, "k1"))
    assert replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    conflict = await client.post("/orders", json=body(market, quantity=3),
                                 headers=headers(market, "k1"))
    assert conflict.status_code == 409
    assert conflict.json()["field"] == "Idempotency-Key"
    bad = await client.post("/orders", json=body(market, quantity=0),
                            headers=headers(market, "k2"))
    assert bad.status_code == 422
    assert bad.json()["field"] == "quantity"
    assert await OrderRow.count().run() == 1

    order = first.json()
    assert order["state"] == "awaiting_payment"
    foreign = await client.get(f"/orders/{order['id']}", headers=market.other_buyer.headers)
    assert foreign.status_code == 404
    seen = await client.get(f"/orders/{order['id']}", headers=market.operator.headers)
    assert seen.status_code == 200

    receipt = await client.post("/payments/bank-transfer/receipts", headers=market.staff.headers,
                                json={"reference": order["payment"]["reference"],
                                      "bank_transaction_ref": "ICBC-0001", "amount_minor": 5000,
                                      "received_on": today().isoformat()})
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["paid"]
    assert receipt.json()["order"]["state"] == "delivered"
    credential = await client.post(f"/orders/{order['id']}/credential",
                                   headers=market.buyer.headers)
    assert credential.status_code == 200, credential.text
    secret = credential.json()["secret"]
    assert credential.json()["grant"]["kind"] == "api_key"
    use = await client.post("/access/use", headers=market.operator.headers,
                            json={"secret": secret, "calls": 3})
    assert use.status_code == 200
    assert use.json()["calls_used"] == 3
    accepted = await client.post(f"/orders/{order['id']}/accept", headers=market.buyer.headers)
    assert accepted.status_code == 200
    assert accepted.json()["state"] == "completed"
    history = await client.get(f"/orders/{order['id']}/history", headers=market.buyer.headers)
    assert [step["to_state"] for step in history.json()] == [
        "awaiting_payment", "paid", "delivered", "accepted", "completed"]


async def test_stripe_webhook_refuses_a_forged_body(client: httpx.AsyncClient) -> None:
    forged = await client.post("/payments/stripe/webhook", content=b'{"id": "evt_1"}',
                               headers={"Stripe-Signature": "t=1,v1=deadbeef"})
    assert forged.status_code == 400
    unsigned = await client.post("/payments/stripe/webhook", content=b"{}")
    assert unsigned.status_code == 400


async def test_only_buyers_place_orders(client: httpx.AsyncClient) -> None:
    market = await build_market()
    refused = await client.post("/orders", json=body(market),
                                headers={**market.operator.headers, "Idempotency-Key": "x"})
    assert refused.status_code == 403
