"""Operator statements over HTTP: figures from the journal for placed, paid, settled and refunded
orders, JSON and CSV, the exchange's calendar, and who may read them."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from market.accounts.model import Role
from market.database import current_engine
from market.settings import Settings
from market.trading import statements
from settlement.caps import RevenuePeriod
from tests.factories import make_account
from tests.integration.market.orders_setup import Market, build_market, today


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, request_max_body_bytes=64 * 1024)


async def _place(client: httpx.AsyncClient, market: Market, key: str,
                 quantity: int) -> dict[str, Any]:
    body = {"product_id": str(market.product_id), "purpose": "industry", "unit": "per_call",
            "quantity": quantity, "terms_accepted": True,
            "term": {"start": today().isoformat(),
                     "end": (today() + timedelta(days=30)).isoformat()}}
    placed = await client.post("/orders", json=body,
                               headers={**market.buyer.headers, "Idempotency-Key": key})
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    return order


async def _pay(client: httpx.AsyncClient, market: Market, order: dict[str, Any]) -> None:
    paid = await client.post("/payments/bank-transfer/receipts", headers=market.staff.headers,
                             json={"reference": order["payment"]["reference"],
                                   "bank_transaction_ref": f"ICBC-{order['id']}",
                                   "amount_minor": order["price_minor"],
                                   "received_on": today().isoformat()})
    assert paid.status_code == 200, paid.text


async def _accept(client: httpx.AsyncClient, market: Market, order: dict[str, Any]) -> None:
    accepted = await client.post(f"/orders/{order['id']}/accept", headers=market.buyer.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "completed"


async def _refund(client: httpx.AsyncClient, market: Market, order: dict[str, Any]) -> None:
    refunded = await client.post(f"/orders/{order['id']}/refund", headers=market.staff.headers,
                                 json={"reason": "data not as described"})
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["state"] == "refunded"


async def test_statement_from_the_journal_in_json_and_csv(client: httpx.AsyncClient) -> None:
    market = await build_market()
    operator_id = market.operator.organisation.id
    await _place(client, market, "placed", 1)
    paid = await _place(client, market, "paid", 2)
    await _pay(client, market, paid)
    settled = await _place(client, market, "settled", 10)
    await _pay(client, market, settled)
    await _accept(client, market, settled)
    settled_refunded = await _place(client, market, "settled-refunded", 4)
    await _pay(client, market, settled_refunded)
    await _accept(client, market, settled_refunded)
    await _refund(client, market, settled_refunded)
    refunded_unsettled = await _place(client, market, "refunded-unsettled", 3)
    await _pay(client, market, refunded_unsettled)
    await _refund(client, market, refunded_unsettled)

    month = market.period.label
    url = f"/operators/{operator_id}/statements/{month}"
    response = await client.get(url, headers=market.operator.headers)
    assert response.status_code == 200, response.text
    statement = response.json()
    both = (settled, settled_refunded)
    assert statement["period"] == month
    assert statement["zone"] == "Asia/Shanghai"
    assert statement["totals"] == [{
        "currency": "CNY", "order_count": 2,
        "gross_minor": sum(o["price_minor"] for o in both),
        "fee_minor": sum(o["fee_minor"] for o in both),
        "net_minor": sum(o["operator_revenue_minor"] for o in both),
        "refunded_gross_minor": settled_refunded["price_minor"],
        "refunded_fee_minor": settled_refunded["fee_minor"],
        "refunded_net_minor": settled_refunded["operator_revenue_minor"],
        "net_after_refunds_minor": settled["operator_revenue_minor"],
        # Paid by bank transfer: nothing went by Stripe transfer, the net is owed.
        "transferred_minor": 0, "payable_minor": settled["operator_revenue_minor"]}]
    assert statement["totals"][0]["gross_minor"] == 5000 + 2000
    lines = {line["order_id"]: line for line in statement["lines"]}
    assert set(lines) == {settled["id"], settled_refunded["id"]}
    assert lines[settled["id"]]["order_state"] == "completed"
    assert (lines[settled["id"]]["gross_minor"], lines[settled["id"]]["fee_minor"],
            lines[settled["id"]]["net_minor"]) == (5000, settled["fee_minor"],
                                                   5000 - settled["fee_minor"])
    assert lines[settled_refunded["id"]]["net_after_refunds_minor"] == 0
    assert lines[settled_refunded["id"]]["order_state"] == "refunded"

    # The year holds the month; the month before holds nothing.
    year = await client.get(f"/operators/{operator_id}/statements/{month[:4]}",
                            headers=market.staff.headers)
    assert year.status_code == 200
    assert year.json()["totals"] == statement["totals"]
    before = RevenuePeriod(month).previous().label
    empty = await client.get(f"/operators/{operator_id}/statements/{before}",
                             headers=market.regulator.headers)
    assert empty.status_code == 200
    assert (empty.json()["totals"], empty.json()["lines"]) == ([], [])

    for csv_url in (f"{url}?format=csv", f"{url}.csv"):
        as_csv = await client.get(csv_url, headers=market.operator.headers)
        assert as_csv.status_code == 200, as_csv.text
        assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8"))))
        assert [row["order_id"] for row in rows] == [settled["id"], settled_refunded["id"],
                                                     "TOTAL"]
        assert int(rows[-1]["gross_minor"]) == 7000
        assert int(rows[-1]["refunded_net_minor"]) == \
            settled_refunded["operator_revenue_minor"]


async def test_statement_access_and_bad_periods(client: httpx.AsyncClient) -> None:
    market = await build_market()
    operator_id = market.operator.organisation.id
    other_operator = await make_account(Role.OPERATOR)
    url = f"/operators/{operator_id}/statements/{market.period.label}"
    assert (await client.get(url, headers=other_operator.headers)).status_code == 404
    assert (await client.get(url, headers=market.buyer.headers)).status_code == 403
    assert (await client.get(url)).status_code == 401
    not_an_operator = f"/operators/{market.buyer.organisation.id}/statements/2026"
    assert (await client.get(not_an_operator, headers=market.staff.headers)).status_code == 404
    unknown = f"/operators/{uuid.uuid4()}/statements/2026"
    assert (await client.get(unknown, headers=market.staff.headers)).status_code == 404
    for bad in ("2026-13", "26", "2026-1", "2026-11-01"):
        refused = await client.get(f"/operators/{operator_id}/statements/{bad}",
                                   headers=market.staff.headers)
        assert refused.status_code == 422, bad
        assert refused.json()["field"] == "period"
    bad_format = await client.get(f"{url}?format=xml", headers=market.staff.headers)
    assert bad_format.status_code == 400


def test_period_window_is_the_exchange_calendar() -> None:
    start, end = statements.period_window(RevenuePeriod("2026-11"), ZoneInfo("Asia/Shanghai"))
    assert (start, end) == (datetime(2026, 10, 31, 16, tzinfo=UTC),
                            datetime(2026, 11, 30, 16, tzinfo=UTC))


def test_csv_cells_cannot_become_formulas() -> None:
    line = statements.StatementLine(uuid.uuid4(), uuid.uuid4(), "=HYPERLINK(\"x\")", "CNY",
                                    gross_minor=-5)
    statement = statements.Statement(
        operator_id=uuid.uuid4(), period="@SUM(A1)", zone="Asia/Shanghai",
        period_start=datetime(2026, 1, 1, tzinfo=UTC), period_end=datetime(2026, 2, 1, tzinfo=UTC),
        totals=(), lines=(line,))
    row = next(csv.DictReader(io.StringIO(statements.to_csv(statement))))
    assert row["order_state"] == "'=HYPERLINK(\"x\")"
    assert row["period"] == "'@SUM(A1)"
    # Figures stay numbers, even negative ones.
    assert row["gross_minor"] == "-5"


async def test_staff_reconciliation_over_http(client: httpx.AsyncClient) -> None:
    market = await build_market()
    order = await _place(client, market, "reconciled", 2)
    await _pay(client, market, order)
    url = f"/payments/reconciliation?period={market.period.label}"
    clean = await client.get(url, headers=market.staff.headers)
    assert clean.status_code == 200, clean.text
    assert (clean.json()["clean"], clean.json()["differences"]) == (True, [])
    assert clean.json()["journal_movements"] == clean.json()["provider_records"] == 1
    for role in ("buyer", "operator", "regulator"):
        refused = await client.get(url, headers=getattr(market, role).headers)
        assert refused.status_code == 403, role
    bad = await client.get("/payments/reconciliation?period=2026-00",
                           headers=market.staff.headers)
    assert (bad.status_code, bad.json()["field"]) == (422, "period")
    assert (await client.get("/payments/reconciliation",
                             headers=market.staff.headers)).status_code == 400

    # A receipt slipped into the bank records without its journal posting.
    async with current_engine().transaction() as transaction:
        await transaction.connection.execute(
            "INSERT INTO bank_receipts (id, invoice_id, bank_transaction_ref, amount_minor, "
            "currency, received_on, confirmed_by) SELECT $1, id, 'ICBC-SLIPPED', 1, 'CNY', "
            "current_date, 'staff:x' FROM bank_invoices WHERE reference = $2",
            uuid.uuid4(), order["payment"]["reference"])
    report = await client.get(url, headers=market.staff.headers)
    assert report.json()["clean"] is False
    [difference] = report.json()["differences"]
    assert (difference["kind"], difference["provider"], difference["provider_id"],
            difference["provider_amount_minor"], difference["reference"]) == (
        "missing_in_journal", "bank_transfer", "ICBC-SLIPPED", 1, f"order:{order['id']}")
