"""The buyer turns a demand's offer into an order over HTTP: at the offer's price, through the
orders use case (cap, ceiling, Idempotency-Key), with the offer recording the order in the same
transaction; another buyer is told the offer does not exist; a refused order writes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from ledger.tables import LedgerLeaf
from market.trading.order_tables import OrderRow
from tests.e2e.trading_flow import leaf_kinds
from tests.integration.market.orders_setup import Market, build_market, today

Client = httpx.AsyncClient


def demand_body() -> dict[str, Any]:
    return {
        "title": "采购城市逐小时气象数据",
        "description": "物流企业安排车辆调度,需要城市逐小时降水、气温和风速数据接口。",
        "domains": ["meteorology"], "purpose": "industry",
        "unit_budgets_minor": {"per_call": 450}, "delivery_forms": ["api"],
        "grade_clearance": "general",
        "deadline": (today() + timedelta(days=30)).isoformat(), "visibility": "exchange"}


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "quantity": 10, "terms_accepted": True,
        "term": {"start": today().isoformat(),
                 "end": (today() + timedelta(days=30)).isoformat()}}
    body.update(overrides)
    return body


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def demand_with_offer(client: Client, market: Market,
                            price_minor: int = 400) -> tuple[dict[str, Any], dict[str, Any]]:
    demand = await client.post("/demands", json=demand_body(), headers=market.buyer.headers)
    assert demand.status_code == 201, demand.text
    offer = await client.post(
        f"/demands/{demand.json()['id']}/offers", headers=market.operator.headers,
        json={"product_id": str(market.product_id), "unit": "per_call",
              "price_minor": price_minor})
    assert offer.status_code == 201, offer.text
    return demand.json(), offer.json()


def order_path(demand: dict[str, Any], offer: dict[str, Any]) -> str:
    return f"/demands/{demand['id']}/offers/{offer['id']}/order"


async def test_an_offer_becomes_an_order_at_the_offer_price(client: Client) -> None:
    market = await build_market(price_minor=500, cap_minor=600)
    demand, offer = await demand_with_offer(client, market, price_minor=400)
    path = order_path(demand, offer)

    missing = await client.post(path, json=order_body(), headers=market.buyer.headers)
    assert missing.status_code == 422
    assert missing.json()["field"] == "Idempotency-Key"

    first = await client.post(path, json=order_body(), headers=keyed(market.buyer.headers, "o1"))
    assert first.status_code == 201, first.text
    order, ordered_offer = first.json()["order"], first.json()["offer"]
    assert (order["unit_price_minor"], order["price_minor"], order["cap_minor"]) == (
        400, 4000, 600)
    assert order["product_id"] == str(market.product_id)
    assert order["state"] == "awaiting_payment"
    assert ordered_offer["order_id"] == order["id"]
    assert ordered_offer["state"]["value"] == "accepted"

    replay = await client.post(path, json=order_body(), headers=keyed(market.buyer.headers, "o1"))
    assert replay.status_code == 201
    assert replay.json()["order"]["id"] == order["id"]
    changed = await client.post(path, json=order_body(quantity=3),
                                headers=keyed(market.buyer.headers, "o1"))
    assert changed.status_code == 409
    assert changed.json()["field"] == "Idempotency-Key"
    # The same key on POST /orders asks for something else (no offer): refused, not replayed.
    plain = await client.post("/orders", headers=keyed(market.buyer.headers, "o1"), json={
        "product_id": str(market.product_id), "purpose": "industry", "unit": "per_call",
        **order_body()})
    assert plain.status_code == 409
    assert plain.json()["field"] == "Idempotency-Key"
    again = await client.post(path, json=order_body(), headers=keyed(market.buyer.headers, "o2"))
    assert again.status_code == 409
    assert again.json()["field"] == "offer_id"
    assert await OrderRow.count().run() == 1

    mine = await client.get("/orders", headers=market.buyer.headers)
    assert [(o["id"], o["unit_price_minor"]) for o in mine.json()] == [(order["id"], 400)]
    offers = await client.get(f"/demands/{demand['id']}/offers", headers=market.buyer.headers)
    assert [o["order_id"] for o in offers.json()] == [order["id"]]
    seen = await client.get(f"/demands/{demand['id']}", headers=market.buyer.headers)
    assert seen.json()["state"]["value"] == "matched"
    kinds = await leaf_kinds()
    assert kinds[-4:] == ["trading.order", "offer.accepted", "demand.matched", "offer.ordered"]
    # The order placed through the offer is logged as one placed directly is.
    reconciliation = await client.post("/ledger/reconciliations", headers=market.staff.headers)
    assert reconciliation.status_code == 201, reconciliation.text
    assert reconciliation.json()["discrepancies"] == []


async def test_an_accepted_offer_can_be_ordered_once(client: Client) -> None:
    market = await build_market()
    demand, offer = await demand_with_offer(client, market)
    accepted = await client.post(f"/offers/{offer['id']}/accept", headers=market.buyer.headers)
    assert accepted.status_code == 200, accepted.text
    placed = await client.post(order_path(demand, offer), json=order_body(),
                               headers=keyed(market.buyer.headers, "a1"))
    assert placed.status_code == 201, placed.text
    assert placed.json()["offer"]["order_id"] == placed.json()["order"]["id"]
    assert (await leaf_kinds())[-2:] == ["trading.order", "offer.ordered"]


async def test_another_buyer_and_a_declined_offer_are_refused(client: Client) -> None:
    market = await build_market()
    demand, offer = await demand_with_offer(client, market)
    path = order_path(demand, offer)
    foreign = await client.post(path, json=order_body(),
                                headers=keyed(market.other_buyer.headers, "x1"))
    assert foreign.status_code == 404
    operator = await client.post(path, json=order_body(),
                                 headers=keyed(market.operator.headers, "x1"))
    assert operator.status_code == 403
    elsewhere = await client.post(f"/demands/{market.product_id}/offers/{offer['id']}/order",
                                  json=order_body(), headers=keyed(market.buyer.headers, "x1"))
    assert elsewhere.status_code == 404

    declined = await client.post(f"/offers/{offer['id']}/decline", headers=market.buyer.headers)
    assert declined.status_code == 200
    refused = await client.post(path, json=order_body(), headers=keyed(market.buyer.headers, "x2"))
    assert refused.status_code == 409
    assert refused.json()["field"] == "offer_id"
    assert offer["id"] in refused.json()["detail"]
    assert await OrderRow.count().run() == 0


async def test_a_refused_order_writes_nothing(client: Client) -> None:
    # Ten calls at 400 need 3,800 of revenue room; the ceiling leaves 1,000.
    market = await build_market(ceiling_minor=1_000)
    demand, offer = await demand_with_offer(client, market, price_minor=400)
    leaves = await LedgerLeaf.count().run()
    full = await client.post(order_path(demand, offer), json=order_body(),
                             headers=keyed(market.buyer.headers, "c1"))
    assert full.status_code == 409, full.text
    assert full.json()["field"] == "quantity"
    bad = await client.post(order_path(demand, offer), json=order_body(quantity=0),
                            headers=keyed(market.buyer.headers, "c2"))
    assert bad.status_code == 422
    assert bad.json()["field"] == "quantity"
    assert await OrderRow.count().run() == 0
    assert await LedgerLeaf.count().run() == leaves
    offers = await client.get(f"/demands/{demand['id']}/offers", headers=market.buyer.headers)
    assert [(o["state"]["value"], o["order_id"]) for o in offers.json()] == [("pending", None)]
    seen = await client.get(f"/demands/{demand['id']}", headers=market.buyer.headers)
    assert seen.json()["state"]["value"] == "open"
    # Within the ceiling, the same offer still orders.
    small = await client.post(order_path(demand, offer), json=order_body(quantity=2),
                              headers=keyed(market.buyer.headers, "c3"))
    assert small.status_code == 201, small.text
