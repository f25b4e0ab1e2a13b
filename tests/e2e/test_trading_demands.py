"""Demand end to end through HTTP: post → matches with explanations → the operator finds the
demand → question and answer → offer → the buyer accepts → fulfilled; tenant isolation, roles
and bad input (a 4xx naming the field, nothing written)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from market.accounts.model import Role
from market.trading.matching import ALL_FILTERS
from tests.e2e.listings_flow import listed_product, make_cast, ok, today
from tests.e2e.trading_flow import counts, demand_body, leaf_kinds, notification_kinds, post_demand
from tests.factories import make_account

Client = httpx.AsyncClient


async def test_post_match_find_ask_offer_accept_fulfil(client: Client, db: str) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    demand = await post_demand(client, cast.buyer)
    assert demand["state"]["value"] == "open"
    assert demand["close_reason"] is None
    assert [d["value"] for d in demand["domains"]] == ["meteorology"]

    found = ok(await client.get(f"/demands/{demand['id']}/matches", headers=cast.buyer.headers))
    assert [m["product_id"] for m in found["matches"]] == [product["id"]]
    best = found["matches"][0]
    assert best["title"] == product["title"]
    assert {"小时", "气象", "降水"} <= set(best["matched_terms"])
    assert [f["value"] for f in best["filters_passed"]] == [f.value for f in ALL_FILTERS]
    assert best["price"]["price_minor"] == 50
    assert best["price"]["unit"]["value"] == "per_call"
    # The demand names no area, so the product's area (全省) is not judged against it.
    assert best["area_fit"]["value"] == "unstated"

    why = ok(await client.get(f"/demands/{demand['id']}/matches/{product['id']}",
                              headers=cast.buyer.headers))
    assert why["is_match"] is True
    assert why["exclusions"] == []
    assert why["area_fit"] == best["area_fit"]

    for_me = ok(await client.get("/demands/for-me", headers=cast.operator.headers))
    assert [(item["demand"]["id"], item["product_id"]) for item in for_me] == [
        (demand["id"], product["id"])
    ]
    assert for_me[0]["matched_terms"]
    assert for_me[0]["area_fit"]["value"] == "unstated"
    # The other operator has no product that could serve it.
    assert ok(await client.get("/demands/for-me", headers=cast.other_operator.headers)) == []

    question = ok(await client.post(f"/demands/{demand['id']}/questions",
                                    json={"question": "需要覆盖哪些城市?"},
                                    headers=cast.operator.headers), 201)
    answered = ok(await client.post(
        f"/demands/{demand['id']}/questions/{question['id']}/answer",
        json={"answer": "全省地级市。"}, headers=cast.buyer.headers))
    assert answered["answer"] == "全省地级市。"

    offer = ok(await client.post(
        f"/demands/{demand['id']}/offers",
        json={"product_id": product["id"], "unit": "per_call", "price_minor": 40,
              "message": "可提供全省地级市逐小时数据。"},
        headers=cast.operator.headers), 201)
    assert offer["state"]["value"] == "pending"
    assert offer["price"]["price_minor"] == 40

    offers = ok(await client.get(f"/demands/{demand['id']}/offers", headers=cast.buyer.headers))
    assert [o["id"] for o in offers] == [offer["id"]]
    accepted = ok(await client.post(f"/offers/{offer['id']}/accept", headers=cast.buyer.headers))
    assert accepted["state"]["value"] == "accepted"
    assert accepted["order_id"] is None
    matched = ok(await client.get(f"/demands/{demand['id']}", headers=cast.buyer.headers))
    assert matched["state"]["value"] == "matched"
    # A matched demand is no longer open for offers, nor shown to operators as open.
    assert ok(await client.get("/demands/for-me", headers=cast.operator.headers)) == []
    again = await client.post(f"/offers/{offer['id']}/accept", headers=cast.buyer.headers)
    assert again.status_code == 409

    closed = ok(await client.post(f"/demands/{demand['id']}/close", json={"reason": "fulfilled"},
                                  headers=cast.buyer.headers))
    assert (closed["state"]["value"], closed["close_reason"]["value"]) == ("closed", "fulfilled")

    kinds = await leaf_kinds()
    trading = [kind for kind in kinds if kind.startswith(("demand.", "offer."))]
    assert trading == ["demand.posted", "offer.made", "offer.accepted", "demand.matched",
                       "demand.closed"]
    assert {"demand.question", "offer.made"} <= set(
        await notification_kinds(client, cast.buyer))
    assert {"demand.answer", "offer.accepted"} <= set(
        await notification_kinds(client, cast.operator))



async def test_a_match_says_whether_the_product_covers_the_area_asked_for(
    client: Client, db: str
) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    demand = await post_demand(
        client, cast.buyer,
        description="物流企业安排韶关市车辆调度,需要逐小时降水、气温和风速数据接口。")
    found = ok(await client.get(f"/demands/{demand['id']}/matches", headers=cast.buyer.headers))
    (match,) = found["matches"]
    assert match["product_id"] == product["id"]
    # The product's description says it covers the whole province (全省).
    assert match["area_fit"] == {"value": "covered", "label": "覆盖需求地区"}

async def test_another_organisation_sees_nothing_of_a_demand(client: Client, db: str) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    demand = await post_demand(client, cast.buyer)
    offer = ok(await client.post(
        f"/demands/{demand['id']}/offers",
        json={"product_id": product["id"], "unit": "per_call", "price_minor": 50},
        headers=cast.operator.headers), 201)
    other_buyer = await make_account(Role.BUYER)

    for path in (f"/demands/{demand['id']}", f"/demands/{demand['id']}/matches",
                 f"/demands/{demand['id']}/offers", f"/demands/{demand['id']}/questions"):
        response = await client.get(path, headers=other_buyer.headers)
        assert response.status_code == 404, path
    assert ok(await client.get("/demands", headers=other_buyer.headers)) == []
    for action in ("accept", "decline"):
        response = await client.post(f"/offers/{offer['id']}/{action}",
                                     headers=other_buyer.headers)
        assert response.status_code == 404
    response = await client.post(f"/demands/{demand['id']}/withdraw", headers=other_buyer.headers)
    assert response.status_code == 404

    # Another operator cannot offer a product that is not its own, nor see others' offers.
    response = await client.post(
        f"/demands/{demand['id']}/offers",
        json={"product_id": product["id"], "unit": "per_call", "price_minor": 10},
        headers=cast.other_operator.headers)
    assert response.status_code == 404
    assert response.json()["field"] == "product_id"
    assert ok(await client.get(f"/demands/{demand['id']}/offers",
                               headers=cast.other_operator.headers)) == []
    # The buyer's own view is intact.
    mine = ok(await client.get(f"/demands/{demand['id']}/offers", headers=cast.buyer.headers))
    assert [o["state"]["value"] for o in mine] == ["pending"]


async def test_only_buyers_post_and_decide_only_operators_offer(client: Client, db: str) -> None:
    cast = await make_cast()
    for account in (cast.operator, cast.staff, cast.regulator):
        response = await client.post("/demands", json=demand_body(), headers=account.headers)
        assert response.status_code == 403
    assert (await client.post("/demands", json=demand_body())).status_code == 401
    demand = await post_demand(client, cast.buyer)
    response = await client.post(
        f"/demands/{demand['id']}/offers",
        json={"product_id": demand["id"], "unit": "per_call", "price_minor": 1},
        headers=cast.buyer.headers)
    assert response.status_code == 403
    response = await client.post(f"/demands/{demand['id']}/questions",
                                 json={"question": "?"}, headers=cast.buyer.headers)
    assert response.status_code == 403
    assert (await client.get("/demands/for-me", headers=cast.buyer.headers)).status_code == 403
    assert (await counts())[:2] == (1, 0)


BAD_DEMANDS = [
    pytest.param({"budget_minor_per_unit": -1, "unit_budgets_minor": {}},
                 "budget_minor_per_unit", id="negative-budget"),
    pytest.param({"unit_budgets_minor": {"per_call": -5}}, "unit_budgets_minor.per_call",
                 id="negative-unit-budget"),
    pytest.param({"unit_budgets_minor": {"per_minute": 5}}, "unit_budgets_minor.per_minute",
                 id="unknown-unit"),
    pytest.param({"unit_budgets_minor": {}}, "budget_minor_per_unit", id="no-budget"),
    pytest.param({"domains": ["astrology"]}, "domains[0]", id="unknown-domain"),
    pytest.param({"domains": []}, "domains", id="no-domain"),
    pytest.param({"delivery_forms": ["fax"]}, "delivery_forms[0]", id="unknown-form"),
    pytest.param({"purpose": "speculation"}, "purpose", id="unknown-purpose"),
    pytest.param({"visibility": "everyone"}, "visibility", id="unknown-visibility"),
    pytest.param({"deadline": (today() - timedelta(days=1)).isoformat()}, "deadline",
                 id="past-deadline"),
    pytest.param({"title": "weather data please"}, "title", id="title-not-chinese"),
    pytest.param({"title": "  "}, "title", id="empty-title"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_DEMANDS)
async def test_bad_demand_names_the_field_and_writes_nothing(
    client: Client, db: str, changes: dict[str, Any], field: str
) -> None:
    buyer = await make_account(Role.BUYER)
    before = await counts()
    response = await client.post("/demands", json=demand_body(**changes), headers=buyer.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    assert await counts() == before


BAD_OFFERS = [
    pytest.param({"price_minor": 51}, {}, "price_minor", id="above-list-price"),
    pytest.param({"price_minor": 45}, {"unit_budgets_minor": {"per_call": 30}}, "price_minor",
                 id="above-budget"),
    pytest.param({"price_minor": -1}, {}, "price_minor", id="negative"),
    pytest.param({"unit": "per_period"}, {"budget_minor_per_unit": 10**6}, "unit",
                 id="unit-not-listed"),
    pytest.param({}, {"unit_budgets_minor": {"per_period": 10**6}}, "unit",
                 id="unit-not-budgeted"),
    pytest.param({}, {"domains": ["transport"]}, "product_id", id="domain-not-wanted"),
    pytest.param({}, {"delivery_forms": ["file"]}, "product_id", id="form-not-accepted"),
    pytest.param({"unit": "per_hour"}, {}, "unit", id="unknown-unit"),
]


@pytest.mark.parametrize(("offer_changes", "demand_changes", "field"), BAD_OFFERS)
async def test_bad_offer_names_the_field_and_writes_nothing(
    client: Client, db: str, offer_changes: dict[str, Any], demand_changes: dict[str, Any],
    field: str,
) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    demand = await post_demand(client, cast.buyer, **demand_changes)
    before = await counts()
    body = {"product_id": product["id"], "unit": "per_call", "price_minor": 40, **offer_changes}
    response = await client.post(f"/demands/{demand['id']}/offers", json=body,
                                 headers=cast.operator.headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert await counts() == before


async def test_withdrawal_declines_pending_offers_and_closes_the_demand(
    client: Client, db: str
) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    demand = await post_demand(client, cast.buyer, visibility="exchange")
    offer = ok(await client.post(
        f"/demands/{demand['id']}/offers",
        json={"product_id": product["id"], "unit": "per_call", "price_minor": 50},
        headers=cast.operator.headers), 201)
    withdrawn = ok(await client.post(f"/demands/{demand['id']}/withdraw",
                                     headers=cast.buyer.headers))
    assert (withdrawn["state"]["value"], withdrawn["close_reason"]["value"]) == (
        "closed", "withdrawn")
    offers = ok(await client.get(f"/demands/{demand['id']}/offers", headers=cast.buyer.headers))
    assert [o["state"]["value"] for o in offers] == ["declined"]
    response = await client.post(f"/offers/{offer['id']}/accept", headers=cast.buyer.headers)
    assert response.status_code == 409
    again = await client.post(f"/demands/{demand['id']}/withdraw", headers=cast.buyer.headers)
    assert again.status_code == 409
    # The operator that offered still sees the demand it answered, now closed.
    seen = ok(await client.get(f"/demands/{demand['id']}", headers=cast.operator.headers))
    assert seen["state"]["value"] == "closed"
    assert "offer.declined" in await notification_kinds(client, cast.operator)
    kinds = [k for k in await leaf_kinds() if k.startswith(("demand.", "offer."))]
    assert kinds == ["demand.posted", "offer.made", "offer.declined", "demand.closed"]


async def test_peer_exchanges_see_open_public_pool_demands_only(client: Client, db: str) -> None:
    buyer, peer = await make_account(Role.BUYER), await make_account(Role.PEER)
    pooled = await post_demand(client, buyer, visibility="public_pool")
    local = await post_demand(client, buyer, visibility="exchange")
    seen = ok(await client.get("/demands", headers=peer.headers))
    assert [item["id"] for item in seen] == [pooled["id"]]
    assert ok(await client.get(f"/demands/{pooled['id']}", headers=peer.headers))["id"] == (
        pooled["id"])
    assert (await client.get(f"/demands/{local['id']}", headers=peer.headers)).status_code == 404
    ok(await client.post(f"/demands/{pooled['id']}/withdraw", headers=buyer.headers))
    assert ok(await client.get("/demands", headers=peer.headers)) == []
