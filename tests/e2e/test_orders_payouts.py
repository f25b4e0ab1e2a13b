"""Operator payouts over HTTP: staff pay an operator's payable balance out by bank, never more
than it, idempotently; the bank line moves it out of payouts in transit; the journal balances,
reconciliation sees the payout, and the operator's statement lists it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.tables import LedgerLeaf
from market.settings import Settings
from settlement import journal_store, payouts
from settlement.journal import PAYOUTS_IN_TRANSIT, Account
from tests.integration.market.orders_setup import Market, build_market, today


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, request_max_body_bytes=64 * 1024)


async def completed_order(client: httpx.AsyncClient, market: Market) -> dict[str, Any]:
    """A 5,000 fen order paid by bank and accepted: 4,750 payable to the operator."""
    body = {"product_id": str(market.product_id), "purpose": "industry", "unit": "per_call",
            "quantity": 10, "terms_accepted": True,
            "term": {"start": today().isoformat(),
                     "end": (today() + timedelta(days=30)).isoformat()}}
    placed = await client.post("/orders", json=body,
                               headers={**market.buyer.headers, "Idempotency-Key": "o"})
    order: dict[str, Any] = placed.json()
    paid = await client.post("/payments/bank-transfer/receipts", headers=market.staff.headers,
                             json={"reference": order["payment"]["reference"],
                                   "bank_transaction_ref": "ICBC-IN-1", "amount_minor": 5000,
                                   "received_on": today().isoformat()})
    assert paid.status_code == 200, paid.text
    accepted = await client.post(f"/orders/{order['id']}/accept", headers=market.buyer.headers)
    assert accepted.json()["state"] == "completed"
    return order


async def test_payout_of_the_payable_balance(client: httpx.AsyncClient) -> None:
    market = await build_market()
    await completed_order(client, market)
    operator_id = str(market.operator.organisation.id)
    path = f"/operators/{operator_id}/payouts"
    staff = market.staff.headers

    denied = await client.post(path, json={}, headers={**market.operator.headers,
                                                        "Idempotency-Key": "x"})
    assert denied.status_code == 403
    no_key = await client.post(path, json={}, headers=staff)
    assert no_key.status_code == 422
    assert no_key.json()["field"] == "Idempotency-Key"
    too_much = await client.post(path, json={"amount_minor": 4751},
                                 headers={**staff, "Idempotency-Key": "p0"})
    # More than the balance is a conflict with the books, not malformed input.
    assert too_much.status_code == 409, too_much.text
    assert too_much.json()["field"] == "amount_minor"
    bad_period = await client.post(path, json={"period": "2026-13"},
                                   headers={**staff, "Idempotency-Key": "p0"})
    assert bad_period.status_code == 422
    assert bad_period.json()["field"] == "period"
    not_operator = await client.post(f"/operators/{market.buyer.organisation.id}/payouts",
                                     json={}, headers={**staff, "Idempotency-Key": "p0"})
    assert not_operator.status_code == 404

    first = await client.post(path, json={"amount_minor": 3000, "period": market.period.label},
                              headers={**staff, "Idempotency-Key": "p1"})
    assert first.status_code == 201, first.text
    payout = first.json()
    assert payout["reference"].startswith("PDXP-")
    replay = await client.post(path, json={"amount_minor": 3000, "period": market.period.label},
                               headers={**staff, "Idempotency-Key": "p1"})
    assert replay.json()["reference"] == payout["reference"]
    conflict = await client.post(path, json={"amount_minor": 10},
                                 headers={**staff, "Idempotency-Key": "p1"})
    assert conflict.status_code == 409
    payable = Account.operator_payable(operator_id)
    assert await journal_store.balance(payable, "CNY") == -1750
    assert await journal_store.balance(PAYOUTS_IN_TRANSIT, "CNY") == -3000

    rest = await client.post(path, json={}, headers={**staff, "Idempotency-Key": "p2"})
    assert rest.json()["amount_minor"] == 1750
    nothing = await client.post(path, json={}, headers={**staff, "Idempotency-Key": "p3"})
    assert nothing.status_code == 409
    assert await journal_store.balance(payable, "CNY") == 0

    sent_path = f"/payouts/{payout['reference']}/sent"
    sent = await client.post(sent_path, headers=staff,
                             json={"bank_transaction_ref": "ICBC-OUT-1",
                                   "sent_on": today().isoformat()})
    assert sent.status_code == 200, sent.text
    assert sent.json()["bank_transaction_ref"] == "ICBC-OUT-1"
    again = await client.post(sent_path, headers=staff,
                              json={"bank_transaction_ref": "ICBC-OUT-1",
                                    "sent_on": today().isoformat()})
    assert again.status_code == 200
    other_line = await client.post(sent_path, headers=staff,
                                   json={"bank_transaction_ref": "ICBC-OUT-9",
                                         "sent_on": today().isoformat()})
    assert other_line.status_code == 409
    assert await journal_store.balance(PAYOUTS_IN_TRANSIT, "CNY") == -1750
    assert await journal_store.balance(Account.clearing("bank_transfer"), "CNY") == 2000
    assert await journal_store.unbalanced_currencies() == {}
    kinds = [row["kind"] for row in await LedgerLeaf.select(LedgerLeaf.kind).run()]
    assert kinds.count(payouts.INSTRUCTED_KIND) == 2
    assert kinds.count(payouts.SENT_KIND) == 1

    statement = await client.get(f"/operators/{operator_id}/statements/{market.period.label}",
                                 headers=market.operator.headers)
    assert statement.status_code == 200, statement.text
    assert [(p["reference"], p["amount_minor"], p["bank_transaction_ref"])
            for p in statement.json()["payouts"]] == [
        (payout["reference"], 3000, "ICBC-OUT-1"), (rest.json()["reference"], 1750, None)]
    listed = await client.get(path, headers=market.operator.headers)
    assert len(listed.json()) == 2
    foreign = await client.get(path, headers=market.buyer.headers)
    assert foreign.status_code == 403

    report = await client.get("/payments/reconciliation", headers=staff,
                              params={"period": market.period.label})
    assert report.status_code == 200, report.text
    assert json.loads(report.text)["differences"] == []


async def test_operators_with_a_connected_account_are_paid_by_stripe(
        client: httpx.AsyncClient) -> None:
    market = await build_market()
    await completed_order(client, market)
    operator_id = market.operator.organisation.id
    recorded = await client.put(f"/operators/{operator_id}/connected-account",
                                json={"account_id": "acct_1Payouts"},
                                headers=market.staff.headers)
    assert recorded.status_code == 200
    refused = await client.post(f"/operators/{operator_id}/payouts", json={},
                                headers={**market.staff.headers, "Idempotency-Key": "p"})
    assert refused.status_code == 409
    assert refused.json()["field"] == "operator_id"
