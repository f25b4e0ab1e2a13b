"""Card orders over HTTP through Stripe.

- Against localstripe (the real SDK, a stateful Stripe double): the PaymentIntent created after
  the order commits, confirmed as the buyer's browser would, the signed webhook localstripe
  sends POSTed to the exchange → paid → delivered; a duplicate is harmless and a late
  ``payment_failed`` changes nothing.
- Against the recording double (localstripe refuses Connect): staff record an operator's
  connected account, and its card orders become destination charges whose exact form
  parameters are asserted, as are those of the refund reversing the transfer and the fee.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.tables import LedgerLeaf
from market.settings import Settings
from market.trading.order_tables import OrderRow
from market.trading.orders import CONNECTED_ACCOUNT_KIND, ConnectedAccountRow
from settlement import journal_store
from settlement.journal import Account
from settlement.payments.stripe_provider import StripeProvider
from tests.integration.market.orders_setup import Market, build_market, today
from tests.integration.settlement.stripe_double import (
    LocalStripe,
    RecordingStripe,
    WebhookInbox,
    sign,
)

SECRET = "whsec_orders_e2e"
API_KEY = "sk_test_orders_e2e"
CONNECTED = "acct_1OperatorE2E"
STRIPE_CLEARING = Account.clearing("stripe")


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    server = LocalStripe(Path(tmp_path_factory.mktemp("localstripe")) / "state.pickle")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def webhook_inbox() -> AsyncIterator[WebhookInbox]:
    inbox = WebhookInbox()
    await inbox.start()
    try:
        yield inbox
    finally:
        await inbox.stop()


@pytest.fixture
def stripe_api_base(localstripe: LocalStripe) -> str:
    return localstripe.url


@pytest.fixture
def settings(db: str, tmp_path: Path, stripe_api_base: str) -> Settings:
    # A service-fee cap below 5% of a 5,000 order, so the cap (not the rate) sets the fee.
    return Settings(database_url=db, data_dir=tmp_path, request_max_body_bytes=64 * 1024,
                    stripe_api_key=API_KEY, stripe_webhook_secret=SECRET,
                    stripe_api_base=stripe_api_base, service_fee_bps=500,
                    service_fee_cap_minor=100)


def card_order(market: Market) -> dict[str, Any]:
    return {"product_id": str(market.product_id), "purpose": "industry", "unit": "per_call",
            "quantity": 10, "terms_accepted": True, "payment_method": "card",
            "term": {"start": today().isoformat(),
                     "end": (today() + timedelta(days=30)).isoformat()}}


async def place(client: httpx.AsyncClient, market: Market, key: str) -> dict[str, Any]:
    response = await client.post("/orders", json=card_order(market),
                                 headers={**market.buyer.headers, "Idempotency-Key": key})
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def post_webhook(client: httpx.AsyncClient, body: bytes, signature: str) -> httpx.Response:
    return await client.post("/payments/stripe/webhook", content=body,
                             headers={"Stripe-Signature": signature,
                                      "Content-Type": "application/json"})


async def states(client: httpx.AsyncClient, market: Market, order_id: str) -> list[str]:
    history = await client.get(f"/orders/{order_id}/history", headers=market.buyer.headers)
    assert history.status_code == 200, history.text
    return [step["to_state"] for step in history.json()]


async def test_card_order_paid_through_localstripe_webhook(
        client: httpx.AsyncClient, localstripe: LocalStripe,
        webhook_inbox: WebhookInbox) -> None:
    async with httpx.AsyncClient() as http:
        registered = await http.post(f"{localstripe.url}/_config/webhooks/orders-e2e",
                                     data={"url": webhook_inbox.url, "secret": SECRET})
        registered.raise_for_status()
    market = await build_market()
    order = await place(client, market, "card-1")
    assert order["state"] == "awaiting_payment"
    assert (order["price_minor"], order["fee_minor"]) == (5000, 100)
    payment = order["payment"]
    assert payment["provider"] == "stripe"
    intent_id = payment["reference"]
    assert intent_id.startswith("pi_")
    assert payment["client_secret"]

    # What the buyer's browser does with the client secret: attach a card and confirm.
    buyer_side = StripeProvider(API_KEY, api_base=localstripe.url).client
    method = await buyer_side.v1.payment_methods.create_async(params={
        "type": "card",
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    })
    await buyer_side.v1.payment_intents.update_async(intent_id,
                                                     params={"payment_method": method.id})
    await buyer_side.v1.payment_intents.confirm_async(intent_id)
    succeeded = await webhook_inbox.wait_for("payment_intent.succeeded", intent_id)

    first = await post_webhook(client, succeeded.body, succeeded.signature)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "PaymentUpdated"
    seen = await client.get(f"/orders/{order['id']}", headers=market.buyer.headers)
    assert seen.json()["state"] == "delivered"
    assert seen.json()["grant"]["kind"] == "api_key"
    assert await journal_store.balance(STRIPE_CLEARING, "CNY") == 5000
    assert await states(client, market, order["id"]) == ["awaiting_payment", "paid", "delivered"]

    duplicate = await post_webhook(client, succeeded.body, succeeded.signature)
    assert duplicate.status_code == 200
    assert duplicate.json()["outcome"] == "AlreadyProcessed"

    # A failure reported after the success (new event id, validly signed) moves nothing back.
    late = json.dumps({**succeeded.event, "id": "evt_late_failure",
                       "type": "payment_intent.payment_failed"}).encode()
    stale = await post_webhook(client, late, sign(late, SECRET))
    assert stale.status_code == 200
    assert stale.json()["outcome"] == "Stale"

    after = await client.get(f"/orders/{order['id']}", headers=market.buyer.headers)
    assert after.json()["state"] == "delivered"
    assert await journal_store.balance(STRIPE_CLEARING, "CNY") == 5000
    assert await states(client, market, order["id"]) == ["awaiting_payment", "paid", "delivered"]


class TestConnectedAccounts:
    """Destination charges, which localstripe refuses: the recording double instead."""

    @pytest.fixture
    async def recording_stripe(self) -> AsyncIterator[RecordingStripe]:
        double = RecordingStripe()
        await double.start()
        try:
            yield double
        finally:
            await double.stop()

    @pytest.fixture
    def stripe_api_base(self, recording_stripe: RecordingStripe) -> str:
        return recording_stripe.url

    async def test_staff_record_a_validated_connected_account(
            self, client: httpx.AsyncClient) -> None:
        market = await build_market()
        path = f"/operators/{market.operator.organisation.id}/connected-account"
        leaves = await LedgerLeaf.count().run()
        for account in ("acct_", "acct_bad-id", "ca_123", " ", "acct_x" * 60):
            bad = await client.put(path, json={"account_id": account},
                                   headers=market.staff.headers)
            assert bad.status_code in (400, 422), (account, bad.text)
            assert bad.json()["field"] == "account_id"
        for role in (market.operator, market.buyer, market.regulator):
            refused = await client.put(path, json={"account_id": CONNECTED},
                                       headers=role.headers)
            assert refused.status_code == 403
        not_operator = await client.put(
            f"/operators/{market.buyer.organisation.id}/connected-account",
            json={"account_id": CONNECTED}, headers=market.staff.headers)
        assert not_operator.status_code == 404
        assert not_operator.json()["field"] == "organisation_id"
        assert await ConnectedAccountRow.count().run() == 0
        assert await LedgerLeaf.count().run() == leaves

        recorded = await client.put(path, json={"account_id": CONNECTED},
                                    headers=market.staff.headers)
        assert recorded.status_code == 200, recorded.text
        assert recorded.json()["account_id"] == CONNECTED
        leaf = await LedgerLeaf.select().where(
            LedgerLeaf.leaf_index == recorded.json()["leaf_index"]).first().run()
        assert leaf is not None
        assert leaf["kind"] == CONNECTED_ACCOUNT_KIND
        assert json.loads(leaf["entry"])["payload"]["account_id"] == CONNECTED
        # The same account again is no change: no second leaf.
        again = await client.put(path, json={"account_id": CONNECTED},
                                 headers=market.staff.headers)
        assert again.json()["leaf_index"] == recorded.json()["leaf_index"]
        assert await LedgerLeaf.count().run() == leaves + 1

    async def test_destination_charge_and_its_refund(
            self, client: httpx.AsyncClient, recording_stripe: RecordingStripe) -> None:
        market = await build_market()
        # Placed before the operator has a connected account: an ordinary charge.
        plain_order = await place(client, market, "before-connect")
        [plain_create] = recording_stripe.of("POST", "/v1/payment_intents")
        assert "application_fee_amount" not in plain_create.form
        assert "transfer_data[destination]" not in plain_create.form

        recorded = await client.put(
            f"/operators/{market.operator.organisation.id}/connected-account",
            json={"account_id": CONNECTED}, headers=market.staff.headers)
        assert recorded.status_code == 200, recorded.text
        order = await place(client, market, "after-connect")
        assert (order["price_minor"], order["fee_minor"]) == (5000, 100)
        creates = recording_stripe.of("POST", "/v1/payment_intents")
        assert len(creates) == 2
        create = creates[1]
        assert create.idempotency_key == f"order:{order['id']}:payment:1"
        assert create.form == {
            "amount": "5000",
            "currency": "cny",
            "payment_method_types[0]": "card",
            "metadata[order_id]": order["id"],
            "metadata[buyer_org_id]": str(market.buyer.organisation.id),
            "metadata[payment_key]": f"order:{order['id']}:payment:1",
            # The exchange's service fee, at its cap (5% of 5,000 would be 250).
            "application_fee_amount": "100",
            "transfer_data[destination]": CONNECTED,
        }
        # The earlier order keeps the terms it was placed with.
        replay = await client.post("/orders", json=card_order(market),
                                   headers={**market.buyer.headers,
                                            "Idempotency-Key": "before-connect"})
        assert replay.json()["id"] == plain_order["id"]
        assert all("transfer_data[destination]" not in c.form
                   for c in recording_stripe.of("POST", "/v1/payment_intents")
                   if c.idempotency_key == f"order:{plain_order['id']}:payment:1")

        intent_id = order["payment"]["reference"]
        recording_stripe.succeed(intent_id)
        body = json.dumps({"id": "evt_connect_paid", "object": "event",
                           "type": "payment_intent.succeeded",
                           "data": {"object": recording_stripe.intents[intent_id]}}).encode()
        paid = await post_webhook(client, body, sign(body, SECRET))
        assert paid.status_code == 200, paid.text
        seen = await client.get(f"/orders/{order['id']}", headers=market.buyer.headers)
        assert seen.json()["state"] == "delivered"

        refunded = await client.post(f"/orders/{order['id']}/refund",
                                     json={"reason": "数据接口不可用"},
                                     headers=market.staff.headers)
        assert refunded.status_code == 200, refunded.text
        assert refunded.json()["state"] == "refunded"
        [refund] = recording_stripe.of("POST", "/v1/refunds")
        assert refund.idempotency_key == f"order:{order['id']}:refund:1"
        assert refund.form == {
            "payment_intent": intent_id,
            "amount": "5000",
            "metadata[reason]": "数据接口不可用",
            "reverse_transfer": "true",
            "refund_application_fee": "true",
        }
        # Refunding again calls nobody and changes nothing.
        again = await client.post(f"/orders/{order['id']}/refund", json={"reason": "重复"},
                                  headers=market.staff.headers)
        assert again.json()["state"] == "refunded"
        assert len(recording_stripe.of("POST", "/v1/refunds")) == 1
        assert await journal_store.balance(STRIPE_CLEARING, "CNY") == 0
        assert await OrderRow.count().where(OrderRow.state == "refunded").run() == 1

