"""Keeping matches fresh: a listing change is picked up by the refresh job, the stored matches
follow it, and both the buyer and the operator are notified once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from market.trading.tables import MatchRow
from tests.e2e.listings_flow import listed_product, make_cast, ok
from tests.e2e.trading_flow import post_demand, refresh

Client = httpx.AsyncClient


async def stored_product_ids(demand_id: str) -> list[str]:
    rows = await MatchRow.select(MatchRow.product_id).where(
        MatchRow.demand_id == UUID(demand_id)).order_by(MatchRow.rank).run()
    return [str(row["product_id"]) for row in rows]


async def notifications(client: Client, headers: dict[str, str], kind: str) -> list[Any]:
    items = ok(await client.get("/notifications", headers=headers))
    return [item for item in items if item["kind"] == kind]


async def test_listing_a_product_refreshes_matches_and_notifies_both_sides(
    client: Client, db: str
) -> None:
    cast = await make_cast()
    demand = await post_demand(client, cast.buyer)
    await refresh()
    assert await stored_product_ids(demand["id"]) == []
    assert await notifications(client, cast.buyer.headers, "demand.new_matches") == []

    # The listing happens after the demand: the refresh must find the demand it now serves.
    _authorization, product = await listed_product(client, cast)
    report = await refresh()
    assert report.demands_recomputed >= 1
    assert await stored_product_ids(demand["id"]) == [product["id"]]
    told_buyer = await notifications(client, cast.buyer.headers, "demand.new_matches")
    assert len(told_buyer) == 1
    assert told_buyer[0]["subject"] == f"demand:{demand['id']}"
    assert [m["product_id"] for m in told_buyer[0]["payload"]["matches"]] == [product["id"]]
    assert told_buyer[0]["payload"]["matches"][0]["matched_terms"]
    told_operator = await notifications(client, cast.operator.headers,
                                        "demand.matches_your_products")
    assert [n["payload"]["product_ids"] for n in told_operator] == [[product["id"]]]
    assert await notifications(client, cast.other_operator.headers,
                               "demand.matches_your_products") == []

    # Running again re-reads recent changes but announces nothing twice.
    await refresh()
    assert len(await notifications(client, cast.buyer.headers, "demand.new_matches")) == 1

    # Delisting drops the match; the live matches follow at once.
    ok(await client.post(f"/products/{product['id']}/delist", json={"reason": "数据更新维护"},
                         headers=cast.operator.headers))
    await refresh()
    assert await stored_product_ids(demand["id"]) == []
    live = ok(await client.get(f"/demands/{demand['id']}/matches", headers=cast.buyer.headers))
    assert live["matches"] == []
    assert ok(await client.get("/demands/for-me", headers=cast.operator.headers)) == []

    # Marking read: the buyer's unread list shrinks; another organisation's id is unknown.
    notification_id = told_buyer[0]["id"]
    response = await client.post(f"/notifications/{notification_id}/read",
                                 headers=cast.operator.headers)
    assert response.status_code == 404
    read = ok(await client.post(f"/notifications/{notification_id}/read",
                                headers=cast.buyer.headers))
    assert read["read_at"] is not None
    unread = ok(await client.get("/notifications", params={"unread": "true"},
                                 headers=cast.buyer.headers))
    assert notification_id not in [item["id"] for item in unread]


async def test_a_withdrawn_demand_leaves_the_stored_matches(client: Client, db: str) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    demand = await post_demand(client, cast.buyer)
    await refresh()
    assert await stored_product_ids(demand["id"]) == [product["id"]]
    ok(await client.post(f"/demands/{demand['id']}/withdraw", headers=cast.buyer.headers))
    await refresh()
    assert await stored_product_ids(demand["id"]) == []
