"""Demand shared across exchanges over HTTP (一地提出,全国响应), with a peer exchange stood
for by a chain key in the directory and an HTTP double for its inbox.

Receiving: a peer's signed demand is kept, matched against the local catalog and shown to the
operator whose product matches; the operator's offer goes back signed; re-deliveries change
nothing; forged, replayed, stale, expired and unknown-sender messages are refused with the field
and kept for staff; closure propagates. Sending: a public-pool demand is shared (without the
buyer) with every active peer, its peer's offer is shown to the buyer among the local offers,
and accepting it matches the demand and tells the offering exchange, with the new version.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ledger.tables import LedgerLeaf
from market.ledger_wiring import identity_from_settings
from market.peering.tables import RefusalRow
from market.settings import Settings
from market.trading.shared_identity import ExchangeIdentity
from market.trading.shared_messages import OfferDecision, SharedDemand, SharedOffer
from market.trading.shared_store import list_deliveries
from tests.e2e.listings_flow import listed_product, make_cast, ok, today
from tests.e2e.shared_demand_flow import (
    CHAIN_ID,
    EXCHANGE_KEY,
    LEDGER_CONTRACT,
    PEER_NAME,
    PEER_ORIGIN,
    PeerInbox,
    admit_peer,
    demand_message,
    offer_message,
    run_outbox,
    signed_body,
)
from tests.e2e.trading_flow import leaf_kinds, notification_kinds, post_demand

Client = httpx.AsyncClient
LATER = timedelta(hours=2)


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, request_max_body_bytes=64 * 1024,
                    chain_private_key=EXCHANGE_KEY, ledger_contract_address=LEDGER_CONTRACT,
                    chain_id=CHAIN_ID)


@pytest.fixture
async def identity(settings: Settings) -> ExchangeIdentity:
    resolved = await identity_from_settings(settings)
    assert resolved is not None
    return resolved


async def refusal_reasons() -> list[tuple[str, str]]:
    rows = await RefusalRow.select(RefusalRow.kind, RefusalRow.reason).order_by(
        RefusalRow.id).run()
    return [(row["kind"], row["reason"]) for row in rows]


def later() -> datetime:
    # Past any lease or backoff of the app's own delivery job, which runs beside the test.
    return datetime.now(UTC) + LATER


async def test_a_peer_demand_is_matched_answered_and_closed(
        client: Client, db: str, identity: ExchangeIdentity) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    await admit_peer()
    message = demand_message(identity.origin)
    kept = ok(await client.post("/peer/demands", json=signed_body(message)))
    assert kept["duplicate"] is False

    found = ok(await client.get("/peer-demands", headers=cast.operator.headers))
    assert [item["demand"]["id"] for item in found] == [kept["id"]]
    assert found[0]["matching_product_ids"] == [product["id"]]
    assert found[0]["demand"]["origin"] == PEER_ORIGIN
    assert "peer_demand.matches_your_products" in await notification_kinds(client, cast.operator)
    other = ok(await client.get("/peer-demands", headers=cast.other_operator.headers))
    assert other[0]["matching_product_ids"] == []
    # Buyers of this exchange have nothing to do with a peer's demand.
    refused = await client.get("/peer-demands", headers=cast.buyer.headers)
    assert refused.status_code == 403

    again = ok(await client.post("/peer/demands", json=signed_body(message)))
    assert again == {"id": kept["id"], "duplicate": True}

    too_dear = await client.post(
        f"/peer-demands/{kept['id']}/offers",
        json={"product_id": product["id"], "unit": "per_call", "price_minor": 101},
        headers=cast.operator.headers)
    assert too_dear.status_code == 422
    assert too_dear.json()["field"] == "price_minor"
    offer = ok(await client.post(
        f"/peer-demands/{kept['id']}/offers",
        json={"product_id": product["id"], "unit": "per_call", "price_minor": 45,
              "message": "可提供全省地级市逐小时数据。"},
        headers=cast.operator.headers), 201)
    assert offer["state"]["value"] == "pending"

    inbox = PeerInbox(identity.address)
    report = await run_outbox(identity, inbox, at=later())
    assert report.delivered == 1
    (sent,) = inbox.of(SharedOffer)
    assert (sent.origin, sent.recipient) == (identity.origin, PEER_ORIGIN)
    assert (sent.demand_id, sent.offer_id) == (message.demand_id, offer["id"])
    assert (sent.product_id, sent.price_minor, sent.registration_code) == (
        product["id"], 45, product["registration_code"])

    decision = OfferDecision(origin=PEER_ORIGIN, recipient=identity.origin,
                             demand_id=message.demand_id, offer_id=offer["id"],
                             decision="accepted", reason="accepted by the buyer", issued_at=1)
    ok(await client.post("/peer/offer-decisions", json=signed_body(decision)))
    offers = ok(await client.get(f"/peer-demands/{kept['id']}/offers",
                                 headers=cast.operator.headers))
    assert offers[0]["state"]["value"] == "accepted"
    assert "peer_offer.accepted" in await notification_kinds(client, cast.operator)
    declined = msgspec.structs.replace(decision, decision="declined")
    conflicting = await client.post("/peer/offer-decisions", json=signed_body(declined))
    assert conflicting.status_code == 409

    closed = msgspec.structs.replace(message, version=2, state="closed",
                                     close_reason="fulfilled")
    ok(await client.post("/peer/demands", json=signed_body(closed)))
    shown = ok(await client.get(f"/peer-demands/{kept['id']}", headers=cast.operator.headers))
    assert (shown["state"]["value"], shown["version"]) == ("closed", 2)
    assert ok(await client.get("/peer-demands", headers=cast.other_operator.headers)) == []
    late = await client.post(
        f"/peer-demands/{kept['id']}/offers",
        json={"product_id": product["id"], "unit": "per_call", "price_minor": 40},
        headers=cast.operator.headers)
    assert late.status_code == 409

    kinds = await leaf_kinds()
    assert [k for k in kinds if k.startswith(("peer_demand.", "peer_offer."))] == [
        "peer_demand.received", "peer_offer.made", "peer_offer.accepted",
        "peer_demand.received"]


async def test_bad_messages_are_refused_with_the_field_and_kept_for_staff(
        client: Client, db: str, identity: ExchangeIdentity) -> None:
    await admit_peer()
    leaves_before = await LedgerLeaf.count().run()
    message = demand_message(identity.origin, version=3)
    ok(await client.post("/peer/demands", json=signed_body(message)))

    forged = signed_body(message)
    forged["message"]["title"] = "篡改后的标题"
    other_key = "0x" + "42" * 32
    cases: list[tuple[dict[str, Any], int, str]] = [
        (forged, 400, "signature"),
        (signed_body(message, other_key), 400, "signature"),
        (signed_body(msgspec.structs.replace(message, version=2)), 409, "message.version"),
        (signed_body(msgspec.structs.replace(message, title="同一版本不同内容")), 409,
         "message.version"),
        (signed_body(demand_message(identity.origin, origin="stranger.test/ledger")), 403,
         "message.origin"),
        (signed_body(demand_message("elsewhere.test/ledger")), 422, "message.recipient"),
        (signed_body(demand_message(identity.origin, deadline=(
            today() - timedelta(days=1)).isoformat())), 422, "message.deadline"),
        (signed_body(demand_message(identity.origin, domains=["astrology"])), 422,
         "message.domains[0]"),
    ]
    for body, status, field in cases:
        response = await client.post("/peer/demands", json=body)
        assert response.status_code == status, (field, response.text)
        assert response.json()["field"] == field
    refusals = await refusal_reasons()
    assert len(refusals) == len(cases)
    assert {kind for kind, _reason in refusals} == {"shared_demand"}
    assert "older than version 3" in refusals[2][1]
    # Nothing of a refused message was kept: one demand, one ledger record.
    assert await LedgerLeaf.count().run() == leaves_before + 1
    found = ok(await client.get("/peer-demands", headers=(await make_cast()).staff.headers))
    assert [item["demand"]["version"] for item in found] == [3]


async def test_a_suspended_peer_is_refused(client: Client, db: str,
                                          identity: ExchangeIdentity) -> None:
    await admit_peer(state="suspended")
    response = await client.post("/peer/demands",
                                 json=signed_body(demand_message(identity.origin)))
    assert response.status_code == 403
    assert "suspended" in response.json()["detail"]


async def test_a_public_demand_is_shared_answered_by_a_peer_and_accepted(
        client: Client, db: str, identity: ExchangeIdentity) -> None:
    cast = await make_cast()
    _authorization, product = await listed_product(client, cast)
    await admit_peer()
    demand = await post_demand(client, cast.buyer)
    private = await post_demand(client, cast.buyer, visibility="exchange")
    local_offer = ok(await client.post(
        f"/demands/{demand['id']}/offers",
        json={"product_id": product["id"], "unit": "per_call", "price_minor": 50},
        headers=cast.operator.headers), 201)

    inbox = PeerInbox(identity.address)
    await run_outbox(identity, inbox, at=later())
    (shared,) = inbox.of(SharedDemand)
    assert (shared.origin, shared.recipient, shared.demand_id, shared.version) == (
        identity.origin, PEER_ORIGIN, demand["id"], 1)
    assert (shared.title, shared.state) == (demand["title"], "open")
    assert [(b.unit, b.amount_minor) for b in shared.unit_budgets] == [("per_call", 100)]
    assert not shared.has_budget_per_unit
    body = msgspec.json.encode(shared).decode()
    assert str(cast.buyer.organisation.id) not in body
    assert private["id"] not in body

    offer = offer_message(identity.origin, demand["id"], price_minor=80)
    kept = ok(await client.post("/peer/offers", json=signed_body(offer)))
    assert ok(await client.post("/peer/offers", json=signed_body(offer)))["duplicate"] is True
    over_budget = offer_message(identity.origin, demand["id"], price_minor=101)
    refused = await client.post("/peer/offers", json=signed_body(over_budget))
    assert (refused.status_code, refused.json()["field"]) == (422, "message.priceMinor")
    unknown_demand = offer_message(identity.origin, private["id"])
    refused = await client.post("/peer/offers", json=signed_body(unknown_demand))
    assert (refused.status_code, refused.json()["field"]) == (404, "message.demandId")

    offers = ok(await client.get(f"/demands/{demand['id']}/offers", headers=cast.buyer.headers))
    assert [o["id"] for o in offers] == [local_offer["id"], kept["id"]]
    assert offers[0]["exchange"] is None
    assert offers[1]["exchange"] == {"name": PEER_NAME, "origin": PEER_ORIGIN}
    assert offers[1]["price"]["price_minor"] == 80
    # Operators of this exchange do not see peers' offers.
    mine = ok(await client.get(f"/demands/{demand['id']}/offers", headers=cast.operator.headers))
    assert [o["id"] for o in mine] == [local_offer["id"]]

    accepted = ok(await client.post(
        f"/demands/{demand['id']}/foreign-offers/{kept['id']}/accept",
        headers=cast.buyer.headers))
    assert accepted["state"]["value"] == "accepted"
    assert accepted["exchange"]["origin"] == PEER_ORIGIN
    shown = ok(await client.get(f"/demands/{demand['id']}", headers=cast.buyer.headers))
    assert shown["state"]["value"] == "matched"
    offers = ok(await client.get(f"/demands/{demand['id']}/offers", headers=cast.buyer.headers))
    assert [o["state"]["value"] for o in offers] == ["declined", "accepted"]
    again = await client.post(f"/demands/{demand['id']}/foreign-offers/{kept['id']}/accept",
                              headers=cast.buyer.headers)
    assert again.status_code == 409

    inbox = PeerInbox(identity.address)
    await run_outbox(identity, inbox, at=later())
    (decision,) = inbox.of(OfferDecision)
    assert (decision.offer_id, decision.decision) == (offer.offer_id, "accepted")
    (matched,) = inbox.of(SharedDemand)
    assert (matched.version, matched.state) == (2, "matched")
    deliveries = await list_deliveries()
    assert {d.state for d in deliveries} == {"delivered"}
    kinds = await leaf_kinds()
    assert [k for k in kinds if k.startswith("foreign_offer.")] == [
        "foreign_offer.received", "foreign_offer.accepted"]


async def test_delivery_retries_and_refusals(client: Client, db: str,
                                             identity: ExchangeIdentity) -> None:
    cast = await make_cast()
    await admit_peer()
    demand = await post_demand(client, cast.buyer)
    failing = PeerInbox(identity.address, lambda _request: 503)
    report = await run_outbox(identity, failing, at=later())
    assert (report.delivered, report.retrying) == (0, 1)
    # Withdrawn before the peer came back: only the latest version is still worth sending.
    ok(await client.post(f"/demands/{demand['id']}/withdraw", headers=cast.buyer.headers))
    refusing = PeerInbox(identity.address, lambda _request: 409)
    await run_outbox(identity, refusing, at=later() + timedelta(hours=1))
    (closed,) = refusing.of(SharedDemand)
    assert (closed.version, closed.state, closed.close_reason) == (2, "closed", "withdrawn")
    states = {(d.version, d.state) for d in await list_deliveries()}
    assert states == {(1, "superseded"), (2, "refused")}
