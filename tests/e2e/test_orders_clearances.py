"""The buyer clearance register over HTTP: an important-grade product is refused to a buyer
without a clearance in force, with the reason named, and admitted once staff clear the buyer;
revocation and expiry take effect for new orders; only staff write the register."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.tables import LedgerLeaf
from listings.domains import Grade
from market.settings import Settings
from market.trading import clearances
from tests.e2e.listings_flow import ok
from tests.e2e.trading_flow import demand_body
from tests.integration.market.orders_setup import Market, build_market, today


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, request_max_body_bytes=64 * 1024)


def order_body(market: Market) -> dict[str, Any]:
    return {"product_id": str(market.product_id), "purpose": "industry", "unit": "per_call",
            "quantity": 2, "terms_accepted": True,
            "term": {"start": today().isoformat(),
                     "end": (today() + timedelta(days=30)).isoformat()}}


async def place(client: httpx.AsyncClient, market: Market, key: str) -> httpx.Response:
    return await client.post("/orders", json=order_body(market),
                             headers={**market.buyer.headers, "Idempotency-Key": key})


def clearance_body(market: Market, **overrides: Any) -> dict[str, Any]:
    body = {"buyer_org_id": str(market.buyer.organisation.id), "grade": "important",
            "valid_from": today().isoformat(),
            "valid_to": (today() + timedelta(days=90)).isoformat(),
            "evidence": "数据安全评估报告 2026-017 号"}
    body.update(overrides)
    return body


async def test_important_data_needs_a_clearance_in_force(client: httpx.AsyncClient) -> None:
    market = await build_market(grade=Grade.IMPORTANT)
    refused = await place(client, market, "before")
    assert refused.status_code == 403, refused.text
    assert refused.json()["field"] == "product_id"
    assert "no_clearance" in refused.json()["detail"]
    quoted = await client.post("/orders/quote", json=order_body(market),
                               headers=market.buyer.headers)
    assert quoted.status_code == 403

    for role in (market.buyer, market.operator, market.regulator):
        denied = await client.post("/clearances", json=clearance_body(market),
                                   headers=role.headers)
        assert denied.status_code == 403
    for field, value in (("grade", "general"), ("grade", "core"), ("grade", "secret"),
                         ("valid_to", (today() - timedelta(days=1)).isoformat())):
        bad = await client.post("/clearances", json=clearance_body(market, **{field: value}),
                                headers=market.staff.headers)
        assert bad.status_code == 422, bad.text
        assert bad.json()["field"] == field
    operator_org = await client.post(
        "/clearances", headers=market.staff.headers,
        json=clearance_body(market, buyer_org_id=str(market.operator.organisation.id)))
    assert operator_org.status_code == 404
    assert operator_org.json()["field"] == "buyer_org_id"

    granted = await client.post("/clearances", json=clearance_body(market),
                                headers=market.staff.headers)
    assert granted.status_code == 201, granted.text
    clearance = granted.json()
    leaf = await LedgerLeaf.select().where(
        LedgerLeaf.leaf_index == clearance["leaf_index"]).first().run()
    assert leaf is not None
    assert leaf["kind"] == clearances.GRANTED_KIND
    assert json.loads(leaf["entry"])["payload"]["grade"] == "important"

    admitted = await place(client, market, "after")
    assert admitted.status_code == 201, admitted.text
    # The other buyer is not cleared by this buyer's clearance.
    other = await client.post("/orders", json=order_body(market),
                              headers={**market.other_buyer.headers, "Idempotency-Key": "o"})
    assert other.status_code == 403

    own = await client.get("/clearances", headers=market.buyer.headers)
    assert [c["id"] for c in own.json()] == [clearance["id"]]
    foreign = await client.get("/clearances", headers=market.other_buyer.headers,
                               params={"buyer_org_id": str(market.buyer.organisation.id)})
    assert foreign.status_code == 404
    register = await client.get("/clearances", headers=market.regulator.headers,
                                params={"buyer_org_id": str(market.buyer.organisation.id)})
    assert [c["id"] for c in register.json()] == [clearance["id"]]

    revoked = await client.post(f"/clearances/{clearance['id']}/revoke",
                                json={"reason": "评估报告已失效"}, headers=market.staff.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    again = await client.post(f"/clearances/{clearance['id']}/revoke",
                              json={"reason": "重复"}, headers=market.staff.headers)
    assert again.status_code == 404
    after_revocation = await place(client, market, "revoked")
    assert after_revocation.status_code == 403
    assert "clearance_revoked" in after_revocation.json()["detail"]

    later = await client.post("/clearances", headers=market.staff.headers, json=clearance_body(
        market, valid_from=(today() + timedelta(days=5)).isoformat()))
    assert later.status_code == 201
    not_yet = await place(client, market, "not-yet")
    assert not_yet.status_code == 403
    assert "clearance_not_yet_valid" in not_yet.json()["detail"]


async def test_general_data_needs_no_clearance(client: httpx.AsyncClient) -> None:
    market = await build_market()
    placed = await place(client, market, "general")
    assert placed.status_code == 201, placed.text


async def test_a_demand_claims_no_more_clearance_than_the_register_grants(
        client: httpx.AsyncClient) -> None:
    market = await build_market()
    demand = demand_body(grade_clearance="important")
    refused = await client.post("/demands", json=demand, headers=market.buyer.headers)
    assert refused.status_code == 422
    assert refused.json()["field"] == "grade_clearance"
    ok(await client.post("/clearances", json=clearance_body(market),
                         headers=market.staff.headers), 201)
    posted = ok(await client.post("/demands", json=demand, headers=market.buyer.headers), 201)
    assert posted["grade_clearance"]["value"] == "important"
