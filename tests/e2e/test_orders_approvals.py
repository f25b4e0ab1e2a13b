"""The regulator's approvals of fee caps and revenue ceilings, and staff's free-use eligibility
grants, over HTTP: who may call them, bad input refused naming the field with nothing written,
one ledger leaf per approval, and orders priced against the cap version in force."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from ledger.tables import LedgerLeaf
from settlement.caps_service import FEE_CAP_APPROVED, REVENUE_CEILING_APPROVED
from settlement.eligibility_store import ELIGIBILITY_GRANTED
from tests.factories import Account
from tests.integration.market.orders_setup import Market, build_market, today


async def rows(table: str) -> int:
    # ``table`` is one of this module's constant names, never input.
    [row] = await LedgerLeaf.raw(f"SELECT count(*) AS n FROM {table}").run()  # noqa: S608
    return int(row["n"])


async def leaves_of(kind: str) -> list[dict[str, Any]]:
    found = await LedgerLeaf.select(LedgerLeaf.entry).where(LedgerLeaf.kind == kind).order_by(
        LedgerLeaf.leaf_index).run()
    return [json.loads(leaf["entry"])["payload"] for leaf in found]


def cap_body(market: Market, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "product_id": str(market.product_id), "purpose": "industry", "unit": "per_call",
        "cap_minor": 550, "effective_from": today().isoformat(),
        "approval_reference": "发改价格〔2026〕7号"}
    data.update(overrides)
    return data


def order_body(market: Market, purpose: str = "industry") -> dict[str, Any]:
    return {"product_id": str(market.product_id), "purpose": purpose, "unit": "per_call",
            "quantity": 10, "terms_accepted": True,
            "term": {"start": today().isoformat(),
                     "end": (today() + timedelta(days=30)).isoformat()}}


async def quote(client: httpx.AsyncClient, market: Market) -> httpx.Response:
    return await client.post("/orders/quote", json=order_body(market),
                             headers=market.buyer.headers)


async def test_fee_cap_approval(client: httpx.AsyncClient) -> None:
    market = await build_market()  # price 500, cap 600 in force since yesterday
    caps, leaves = await rows("fee_caps"), await LedgerLeaf.count().run()

    for caller in (market.staff, market.operator, market.buyer):
        refused = await client.post("/caps/fee-caps", json=cap_body(market),
                                    headers=caller.headers)
        assert refused.status_code == 403
    bad_inputs: list[tuple[dict[str, Any], str]] = [
        ({"purpose": "gambling"}, "purpose"),
        ({"unit": "per_mile"}, "unit"),
        ({"cap_minor": -1}, "cap_minor"),
        ({"currency": "cny"}, "currency"),
        ({"effective_from": "2026-02-30"}, "effective_from"),
        ({"effective_to": (today() - timedelta(days=1)).isoformat()}, "effective_to"),
        ({"approval_reference": " "}, "approval_reference"),
        ({"surprise": 1}, "surprise"),
    ]
    for override, field in bad_inputs:
        bad = await client.post("/caps/fee-caps", json=cap_body(market, **override),
                                headers=market.regulator.headers)
        assert bad.status_code in (400, 422), (override, bad.text)
        assert bad.json()["field"] == field, (override, bad.json())
    missing = cap_body(market)
    del missing["cap_minor"]
    absent = await client.post("/caps/fee-caps", json=missing, headers=market.regulator.headers)
    assert absent.status_code == 400
    assert absent.json()["field"] == "cap_minor"
    assert await rows("fee_caps") == caps
    assert await LedgerLeaf.count().run() == leaves

    # A version from today supersedes the open one: orders are priced against it at once.
    now_in_force = await client.post("/caps/fee-caps", json=cap_body(market, cap_minor=550),
                                     headers=market.regulator.headers)
    assert now_in_force.status_code == 201, now_in_force.text
    quoted = await quote(client, market)
    assert quoted.status_code == 200, quoted.text
    assert (quoted.json()["cap_minor"], quoted.json()["unit_price_minor"]) == (550, 500)
    placed = await client.post("/orders", json=order_body(market),
                               headers={**market.buyer.headers, "Idempotency-Key": "cap-1"})
    assert placed.status_code == 201, placed.text
    assert placed.json()["cap_minor"] == 550

    # A version from tomorrow: approved and ledgered, but today's orders keep today's cap.
    tomorrow = (today() + timedelta(days=1)).isoformat()
    later = await client.post("/caps/fee-caps",
                              json=cap_body(market, cap_minor=800, effective_from=tomorrow),
                              headers=market.regulator.headers)
    assert later.status_code == 201, later.text
    assert (later.json()["cap_minor"], later.json()["effective_from"]) == (800, tomorrow)
    assert (await quote(client, market)).json()["cap_minor"] == 550

    approvals = await leaves_of(FEE_CAP_APPROVED)
    # build_market's approval, then one leaf for each of the two approved here.
    assert [a["cap_minor"] for a in approvals] == ["600", "550", "800"]
    assert approvals[1]["approval_reference"] == "发改价格〔2026〕7号"
    assert await rows("fee_caps") == caps + 2


async def test_a_cap_below_the_listed_price_stops_sales(client: httpx.AsyncClient) -> None:
    market = await build_market()
    lowered = await client.post("/caps/fee-caps", json=cap_body(market, cap_minor=400),
                                headers=market.regulator.headers)
    assert lowered.status_code == 201, lowered.text
    refused = await client.post("/orders", json=order_body(market),
                                headers={**market.buyer.headers, "Idempotency-Key": "low"})
    assert refused.status_code == 409
    assert refused.json()["field"] == "product_id"
    assert "400" in refused.json()["detail"]
    assert await rows("trading_orders") == 0


def ceiling_body(operator: Account, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "operator_id": str(operator.organisation.id), "period": "2099",
        "operating_cost_minor": 800_000, "permitted_profit_minor": 150_000,
        "tax_minor": 50_000, "approval_reference": "发改价格〔2026〕8号"}
    data.update(overrides)
    return data


async def test_revenue_ceiling_approval(client: httpx.AsyncClient) -> None:
    market = await build_market()
    ceilings, leaves = await rows("revenue_ceilings"), await LedgerLeaf.count().run()
    for caller in (market.staff, market.operator, market.buyer):
        refused = await client.post("/caps/revenue-ceilings",
                                    json=ceiling_body(market.operator), headers=caller.headers)
        assert refused.status_code == 403
    bad_inputs: list[tuple[dict[str, Any], str]] = [
        ({"period": "2099-13"}, "period"),
        ({"period": "next year"}, "period"),
        ({"operating_cost_minor": -5}, "operating_cost_minor"),
        ({"tax_minor": 1.5}, "tax_minor"),
        ({"operator_id": "not-a-uuid"}, "operator_id"),
        ({"approval_reference": ""}, "approval_reference"),
    ]
    for override, field in bad_inputs:
        bad = await client.post("/caps/revenue-ceilings",
                                json=ceiling_body(market.operator, **override),
                                headers=market.regulator.headers)
        assert bad.status_code in (400, 422), (override, bad.text)
        assert bad.json()["field"] == field, (override, bad.json())
    assert await rows("revenue_ceilings") == ceilings
    assert await LedgerLeaf.count().run() == leaves

    first = await client.post("/caps/revenue-ceilings", json=ceiling_body(market.operator),
                              headers=market.regulator.headers)
    assert first.status_code == 201, first.text
    assert (first.json()["approved_minor"], first.json()["version"],
            first.json()["period"]) == (1_000_000, 1, "2099")
    revised = await client.post("/caps/revenue-ceilings",
                                json=ceiling_body(market.operator, tax_minor=60_000),
                                headers=market.regulator.headers)
    assert revised.status_code == 201, revised.text
    assert (revised.json()["approved_minor"], revised.json()["version"]) == (1_010_000, 2)
    approvals = [a for a in await leaves_of(REVENUE_CEILING_APPROVED)
                 if a.get("period") == "2099"]
    assert len(approvals) == 2
    assert await LedgerLeaf.count().run() == leaves + 2


async def test_eligibility_grants_free_use(client: httpx.AsyncClient) -> None:
    market = await build_market()
    welfare = order_body(market, purpose="public_welfare")
    ineligible = await client.post("/orders", json=welfare,
                                    headers={**market.buyer.headers, "Idempotency-Key": "w1"})
    assert ineligible.status_code == 403
    assert ineligible.json()["field"] == "purpose"

    grant: dict[str, Any] = {
        "buyer_org_id": str(market.buyer.organisation.id), "purposes": ["public_welfare"],
        "valid_from": today().isoformat(),
        "valid_to": (today() + timedelta(days=90)).isoformat(),
        "evidence": "市民政局关于公益项目的认定函(民函〔2026〕3号)"}
    eligibilities, leaves = await rows("free_use_eligibilities"), await LedgerLeaf.count().run()
    for caller in (market.regulator, market.operator, market.buyer):
        refused = await client.post("/eligibilities", json=grant, headers=caller.headers)
        assert refused.status_code == 403
    bad_inputs: list[tuple[dict[str, Any], str]] = [
        ({"purposes": ["gambling"]}, "purpose"),
        ({"evidence": " "}, "evidence"),
        ({"valid_to": (today() - timedelta(days=1)).isoformat()}, "valid_to"),
        ({"buyer_org_id": "nobody"}, "buyer_org_id"),
    ]
    for override, field in bad_inputs:
        bad = await client.post("/eligibilities", json={**grant, **override},
                                headers=market.staff.headers)
        assert bad.status_code in (400, 422), (override, bad.text)
        assert bad.json()["field"] == field, (override, bad.json())
    assert await rows("free_use_eligibilities") == eligibilities
    assert await LedgerLeaf.count().run() == leaves

    granted = await client.post("/eligibilities", json=grant, headers=market.staff.headers)
    assert granted.status_code == 201, granted.text
    assert granted.json()["purposes"] == ["public_welfare"]
    [leaf] = await leaves_of(ELIGIBILITY_GRANTED)
    assert leaf["buyer_org_id"] == str(market.buyer.organisation.id)

    free = await client.post("/orders", json=welfare,
                             headers={**market.buyer.headers, "Idempotency-Key": "w2"})
    assert free.status_code == 201, free.text
    assert (free.json()["price_minor"], free.json()["state"]) == (0, "delivered")
    # The grant is the buyer's own: another buyer is still refused.
    other = await client.post("/orders", json=welfare,
                              headers={**market.other_buyer.headers, "Idempotency-Key": "w3"})
    assert other.status_code == 403
