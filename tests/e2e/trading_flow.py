"""Steps of the demand flows through HTTP, shared by the trading end-to-end tests."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from ledger.tables import LedgerLeaf
from market.trading import matching_service
from market.trading.tables import DemandRow, OfferRow
from tests.e2e.listings_flow import ok, today
from tests.factories import Account

Client = httpx.AsyncClient


def demand_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "采购城市逐小时气象数据",
        "description": "物流企业安排车辆调度,需要城市逐小时降水、气温和风速数据接口。",
        "domains": ["meteorology"],
        "purpose": "industry",
        "unit_budgets_minor": {"per_call": 100},
        "delivery_forms": ["api", "file"],
        "grade_clearance": "general",
        "deadline": (today() + timedelta(days=30)).isoformat(),
        "visibility": "public_pool",
    }
    body.update(overrides)
    return body


async def post_demand(client: Client, buyer: Account, **overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = ok(
        await client.post("/demands", json=demand_body(**overrides), headers=buyer.headers), 201
    )
    return result


async def refresh() -> matching_service.RefreshReport:
    """Run the refresh job once to completion. The app's own runner may be running it at the
    same moment (it then reports ``skipped``), so wait for a run of our own."""
    while True:
        report = await matching_service.refresh_stored_matches(matching_service.current())
        if not report.skipped:
            return report
        await asyncio.sleep(0.05)


async def counts() -> tuple[int, int, int]:
    """Demands, offers and ledger leaves written so far."""
    return (
        await DemandRow.count().run(),
        await OfferRow.count().run(),
        await LedgerLeaf.count().run(),
    )


async def leaf_kinds() -> list[str]:
    rows = await LedgerLeaf.select(LedgerLeaf.kind).order_by(LedgerLeaf.leaf_index).run()
    return [row["kind"] for row in rows]


async def notification_kinds(client: Client, account: Account) -> list[str]:
    items = ok(await client.get("/notifications", headers=account.headers))
    return [item["kind"] for item in items]
