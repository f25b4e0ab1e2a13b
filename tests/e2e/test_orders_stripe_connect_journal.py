"""The journal of Stripe destination charges over HTTP, against the recording double: Stripe
transfers the operator's share when the buyer pays, so the exchange's Stripe balance keeps only
the fee, the settlement applies the transfer to the operator's payable (which ends at zero), and
each refund's reversal of the transfer returns the refunded operator share. Statements show the
net as paid by transfer, bank payouts stay refused, and reconciliation finds nothing wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from market.settings import Settings
from settlement import journal_store
from settlement.journal import EXCHANGE_FEES, EXCHANGE_REFUNDS, Account
from settlement.money import Money
from settlement.payments.stripe_provider import StripeProvider
from tests.e2e.recording_stripe_setup import (
    place,
    recording_stripe,
    recording_stripe_settings,
)
from tests.integration.market.orders_setup import Market, build_market
from tests.integration.settlement.stripe_double import RecordingStripe, sign

__all__ = ["recording_stripe"]  # the fixture, used by name

SECRET = "whsec_connect_journal"
CONNECTED = "acct_1ConnectJournal"
CLEARING = Account.clearing("stripe")
TRANSFERRED = Account.connect_transferred(CONNECTED)


@pytest.fixture
def settings(db: str, tmp_path: Path, recording_stripe: RecordingStripe) -> Settings:
    return recording_stripe_settings(db, tmp_path, recording_stripe, SECRET)


async def balances(market: Market) -> dict[str, int]:
    """The balances that matter here, as people read them (positive on the normal side)."""
    accounts = {
        "clearing": CLEARING, "transferred": TRANSFERRED, "fees": EXCHANGE_FEES,
        "refunds": EXCHANGE_REFUNDS,
        "payable": Account.operator_payable(str(market.operator.organisation.id)),
        "buyer": Account.buyer(str(market.buyer.organisation.id))}
    return {name: account.natural_balance(await journal_store.balance(account, "CNY"))
            for name, account in accounts.items()}


async def paid_destination_charge(client: httpx.AsyncClient, market: Market,
                                  stripe: RecordingStripe) -> dict[str, Any]:
    """A card order of 5,000 (fee 250) to the connected operator, paid through the webhook."""
    recorded = await client.put(
        f"/operators/{market.operator.organisation.id}/connected-account",
        json={"account_id": CONNECTED}, headers=market.staff.headers)
    assert recorded.status_code == 200, recorded.text
    order = await place(client, market, "connect", "card")
    assert (order["price_minor"], order["fee_minor"]) == (5000, 250)
    intent_id = order["payment"]["reference"]
    stripe.succeed(intent_id)
    body = json.dumps({"id": f"evt_{intent_id}", "object": "event",
                       "type": "payment_intent.succeeded",
                       "data": {"object": stripe.intents[intent_id]}}).encode()
    webhook = await client.post("/payments/stripe/webhook", content=body,
                                headers={"Stripe-Signature": sign(body, SECRET),
                                         "Content-Type": "application/json"})
    assert webhook.status_code == 200, webhook.text
    return order


async def refund(client: httpx.AsyncClient, market: Market, order: dict[str, Any],
                 amount_minor: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": "接口不可用"}
    if amount_minor is not None:
        body["amount_minor"] = amount_minor
    refunded = await client.post(f"/orders/{order['id']}/refund", json=body,
                                 headers=market.staff.headers)
    assert refunded.status_code == 200, refunded.text
    result: dict[str, Any] = refunded.json()
    return result


async def accept(client: httpx.AsyncClient, market: Market, order: dict[str, Any]) -> None:
    accepted = await client.post(f"/orders/{order['id']}/accept", headers=market.buyer.headers)
    assert accepted.json()["state"] == "completed", accepted.text


async def statement_line(client: httpx.AsyncClient, market: Market) -> dict[str, Any]:
    response = await client.get(
        f"/operators/{market.operator.organisation.id}/statements/{market.period.label}",
        headers=market.operator.headers)
    assert response.status_code == 200, response.text
    [line] = response.json()["lines"]
    [totals] = response.json()["totals"]
    assert {key: totals[key] for key in ("transferred_minor", "payable_minor")} == {
        key: line[key] for key in ("transferred_minor", "payable_minor")}
    result: dict[str, Any] = line
    return result


def figures(line: dict[str, Any]) -> tuple[int, ...]:
    return tuple(line[key] for key in (
        "gross_minor", "fee_minor", "net_minor", "refunded_gross_minor", "refunded_fee_minor",
        "refunded_net_minor", "net_after_refunds_minor", "transferred_minor", "payable_minor"))


async def test_settled_destination_charge_then_partial_and_full_refund(
        client: httpx.AsyncClient, recording_stripe: RecordingStripe) -> None:
    market = await build_market()
    order = await paid_destination_charge(client, market, recording_stripe)
    # Stripe sent 4,750 on to the operator at once: the exchange's balance holds the fee, and
    # the buyer's 5,000 is held as 250 there and 4,750 with the operator.
    assert await balances(market) == {"clearing": 250, "transferred": 4750, "fees": 0,
                                      "refunds": 0, "payable": 0, "buyer": 5000}

    await accept(client, market, order)
    # Settled: the fee is revenue, the operator's share is the transfer it already has.
    assert await balances(market) == {"clearing": 250, "transferred": 0, "fees": 250,
                                      "refunds": 0, "payable": 0, "buyer": 0}
    assert figures(await statement_line(client, market)) == (
        5000, 250, 4750, 0, 0, 0, 4750, 4750, 0)
    payout = await client.post(f"/operators/{market.operator.organisation.id}/payouts",
                               json={"currency": "CNY"},
                               headers={**market.staff.headers, "Idempotency-Key": "p-1"})
    assert (payout.status_code, payout.json()["field"]) == (409, "operator_id")

    await refund(client, market, order, 1500)
    # 1,500 back to the buyer: the fee share 75 (250 × 1500 / 5000) from the exchange, the
    # operator share 1,425 by the transfer's reversal.
    assert await balances(market) == {"clearing": 175, "transferred": 0, "fees": 250,
                                      "refunds": 75, "payable": 0, "buyer": 0}
    assert figures(await statement_line(client, market)) == (
        5000, 250, 4750, 1500, 75, 1425, 3325, 3325, 0)

    last = await refund(client, market, order)
    assert last["state"] == "refunded"
    assert await balances(market) == {"clearing": 0, "transferred": 0, "fees": 250,
                                      "refunds": 250, "payable": 0, "buyer": 0}
    assert figures(await statement_line(client, market)) == (
        5000, 250, 4750, 5000, 250, 4750, 0, 0, 0)
    assert await journal_store.unbalanced_currencies() == {}

    report = await client.get(f"/payments/reconciliation?period={market.period.label}",
                              headers=market.staff.headers)
    assert report.status_code == 200, report.text
    assert (report.json()["clean"], report.json()["differences"]) == (True, [])
    # The payment, its transfer, the refunds and the transfer reversals.
    assert report.json()["provider_records"] == 4


async def test_refund_before_settlement_reverses_the_unsettled_transfer(
        client: httpx.AsyncClient, recording_stripe: RecordingStripe) -> None:
    market = await build_market()
    order = await paid_destination_charge(client, market, recording_stripe)
    partly = await refund(client, market, order, 1500)
    assert partly["state"] == "delivered"
    # Before settlement the reversal comes out of what was transferred, not the payable.
    assert await balances(market) == {"clearing": 175, "transferred": 3325, "fees": 0,
                                      "refunds": 0, "payable": 0, "buyer": 3500}

    await accept(client, market, order)
    # What remains settles: 3,500 of which 175 fee and 3,325 the operator's, already its own.
    assert await balances(market) == {"clearing": 175, "transferred": 0, "fees": 175,
                                      "refunds": 0, "payable": 0, "buyer": 0}
    assert figures(await statement_line(client, market)) == (
        3500, 175, 3325, 0, 0, 0, 3325, 3325, 0)
    report = await client.get(f"/payments/reconciliation?period={market.period.label}",
                              headers=market.staff.headers)
    assert (report.json()["clean"], report.json()["differences"]) == (True, [])


async def test_a_reversal_missing_from_the_journal_is_a_difference(
        client: httpx.AsyncClient, recording_stripe: RecordingStripe) -> None:
    market = await build_market()
    order = await paid_destination_charge(client, market, recording_stripe)
    # Stripe refunded (and reversed the transfer) without the exchange booking it.
    stripe = StripeProvider("sk_test_recording", api_base=recording_stripe.url)
    direct = await stripe.refund(order["payment"]["reference"], Money(2000, "CNY"),
                                 idempotency_key="outside-the-exchange", reason="dashboard")
    assert direct.status == "succeeded"
    report = await client.get(f"/payments/reconciliation?period={market.period.label}",
                              headers=market.staff.headers)
    differences = {(d["kind"], d["match_key"]): d for d in report.json()["differences"]}
    assert set(differences) == {
        ("missing_in_journal", f"refunds:order:{order['id']}"),
        ("missing_in_journal", f"transfer-reversals:order:{order['id']}")}
    reversal = differences[("missing_in_journal", f"transfer-reversals:order:{order['id']}")]
    # 2,000 refunded: fee share 100, operator share 1,900 reversed.
    assert reversal["provider_amount_minor"] == 1900
