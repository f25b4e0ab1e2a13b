"""Reconciliation of demands, their offers and demand shared across exchanges with their leaves:
a realistic run (demands fulfilled, withdrawn, ordered and expired; offers made, declined by the
buyer or with their demand, accepted and ordered; peers' offers received and decided; a peer's
demand received twice and offered on) reports nothing; rows changed, deleted or added in SQL are
each reported with what and where."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import msgspec
import pytest
from eth_account import Account

from ledger.reconcile import DiscrepancyKind
from ledger.tables import LedgerLeaf
from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose
from market.peering import refusals
from market.trading import demands, foreign_offer_decisions, foreign_offers, shared_demands
from market.trading.demand_ledger_records import DemandOfferRecords, DemandRecords
from market.trading.matching_service import MatchingService
from market.trading.shared_identity import ExchangeIdentity, KnownPeer
from market.trading.shared_ledger_records import (
    ForeignOfferRecords,
    PeerDemandRecords,
    PeerOfferRecords,
)
from market.trading.shared_messages import OfferDecision, PeerMessage, SignedEnvelope
from market.trading.store import Visibility
from tests.e2e.shared_demand_flow import (
    DOMAIN,
    EXCHANGE_KEY,
    PEER_KEY,
    PEER_NAME,
    PEER_ORIGIN,
    PEER_URL,
    demand_message,
    offer_message,
    signed_body,
)
from tests.integration.market.orders_setup import build_market, config, now, principal, today
from tests.integration.market.reconcile_setup import (
    findings,
    run,
    tamper,
    unchecked_kinds,
)

CHANGED = DiscrepancyKind.RECORD_CHANGED
MISSING = DiscrepancyKind.RECORD_MISSING
NOT_LOGGED = DiscrepancyKind.RECORD_NOT_LOGGED
IDENTITY = ExchangeIdentity(origin="exchange.test/ledger", name="本所", private_key=EXCHANGE_KEY,
                            domain=DOMAIN)


@dataclass(frozen=True)
class Peer:
    origin: str = PEER_ORIGIN
    name: str = PEER_NAME
    chain_address: str = str(Account.from_key(PEER_KEY).address)
    api_base_url: str = PEER_URL
    state: str = "active"


class Directory:
    """The one peer, known without a directory row (whose configuration leaf the peers'
    source would look for)."""

    async def active_peers(self) -> list[KnownPeer]:
        return [Peer()]

    async def peer_by_origin(self, origin: str) -> KnownPeer | None:
        return Peer() if origin == PEER_ORIGIN else None


def envelope(message: PeerMessage) -> SignedEnvelope:
    return msgspec.convert(signed_body(message), SignedEnvelope)


def new_demand(visibility: Visibility, *, days: int = 30) -> demands.NewDemand:
    return demands.NewDemand(
        title="采购城市逐小时气象数据", description="物流调度需要城市逐小时降水和风速数据。",
        domains=[DataDomain.METEOROLOGY], purpose=Purpose.INDUSTRY, budget_minor_per_unit=None,
        unit_budgets_minor={ChargingUnit.PER_CALL: 600}, delivery_forms=[DeliveryForm.API],
        grade_clearance=Grade.GENERAL, deadline=today() + timedelta(days=days),
        visibility=visibility)


@dataclass(frozen=True)
class Demanded:
    fulfilled: UUID  # matched by an offer, then fulfilled
    bare: UUID  # exchange-only and still open, nothing on it
    open_offer: UUID  # pending on an open demand
    buyer_declined_offer: UUID
    accepted_offer: UUID  # accepted, which declined the peer's offer with the demand
    declined_with_match: UUID  # the peer's offer declined when the demand was matched
    withdrawn: UUID  # withdrawn with a pending offer
    declined_with_withdrawal: UUID
    ordered_offer: UUID  # pending, ordered at once
    accepted_then_ordered: UUID
    expired: UUID  # expired with a local and a peer's pending offer
    expired_offer: UUID
    foreign_matched: UUID  # matched by a peer's offer
    foreign_accepted: UUID
    foreign_buyer_declined: UUID
    peer_demand: UUID  # received in two versions, offered on twice
    peer_demand_untouched: UUID
    peer_offer_declined: UUID
    peer_offer_accepted: UUID


async def demand_trade() -> Demanded:
    market = await build_market()
    buyer, operator = principal(market.buyer), principal(market.operator)
    directory = Directory()

    async def offer(demand_id: UUID, price_minor: int) -> UUID:
        made = await demands.make_offer(operator, demand_id, demands.NewOffer(
            market.product_id, ChargingUnit.PER_CALL, price_minor, "可按小时推送。"),
            today=today())
        return made.id

    async def peer_offer(demand_id: UUID) -> UUID:
        received = await foreign_offers.receive(
            envelope(offer_message(IDENTITY.origin, str(demand_id))), IDENTITY, directory,
            refusals, today=today())
        return received.offer.id

    fulfilled = (await demands.post(buyer, new_demand(Visibility.PUBLIC_POOL),
                                    today=today())).id
    buyer_declined_offer = await offer(fulfilled, 450)
    await demands.decline_offer(buyer, buyer_declined_offer)
    declined_with_match = await peer_offer(fulfilled)
    accepted_offer = await offer(fulfilled, 400)
    await demands.accept_offer(buyer, accepted_offer, today=today())
    await demands.close_fulfilled(buyer, fulfilled)

    bare = (await demands.post(buyer, new_demand(Visibility.EXCHANGE), today=today())).id
    open_offer = await offer((await demands.post(buyer, new_demand(Visibility.EXCHANGE),
                                                 today=today())).id, 500)
    withdrawn = (await demands.post(buyer, new_demand(Visibility.EXCHANGE), today=today())).id
    declined_with_withdrawal = await offer(withdrawn, 500)
    await demands.withdraw(buyer, withdrawn)

    terms = demands.OfferOrderTerms(quantity=10, term_start=today(),
                                    term_end=today() + timedelta(days=30), terms_accepted=True)
    ordered_at_once = (await demands.post(buyer, new_demand(Visibility.EXCHANGE),
                                          today=today())).id
    ordered_offer = await offer(ordered_at_once, 300)
    await demands.order_offer(buyer, ordered_at_once, ordered_offer, terms,
                              idempotency_key="offer-order-1", config=config(), now=now())
    ordered_later = (await demands.post(buyer, new_demand(Visibility.EXCHANGE),
                                        today=today())).id
    accepted_then_ordered = await offer(ordered_later, 350)
    await demands.accept_offer(buyer, accepted_then_ordered, today=today())
    await demands.order_offer(buyer, ordered_later, accepted_then_ordered, terms,
                              idempotency_key="offer-order-2", config=config(), now=now())

    expired = (await demands.post(buyer, new_demand(Visibility.PUBLIC_POOL, days=0),
                                  today=today())).id
    expired_offer = await offer(expired, 500)
    await peer_offer(expired)
    assert await demands.expire_due(today() + timedelta(days=1)) == [expired]

    foreign_matched = (await demands.post(buyer, new_demand(Visibility.PUBLIC_POOL),
                                          today=today())).id
    foreign_buyer_declined = await peer_offer(foreign_matched)
    foreign_accepted = await peer_offer(foreign_matched)
    await foreign_offer_decisions.decline(buyer, foreign_matched, foreign_buyer_declined)
    await foreign_offer_decisions.accept(buyer, foreign_matched, foreign_accepted)

    service = MatchingService(ZoneInfo("Asia/Shanghai"))
    first = demand_message(IDENTITY.origin)
    received = await shared_demands.receive(envelope(first), IDENTITY, directory, refusals,
                                            service)
    await shared_demands.receive(
        envelope(msgspec.structs.replace(first, version=2, title="采购城市逐小时气象数据(更新)")),
        IDENTITY, directory, refusals, service)
    untouched = await shared_demands.receive(envelope(demand_message(IDENTITY.origin)),
                                             IDENTITY, directory, refusals, service)
    peer_offers = []
    for decision in ("declined", "accepted"):
        made = await shared_demands.make_offer(
            operator, received.demand.id,
            demands.NewOffer(market.product_id, ChargingUnit.PER_CALL, 90), IDENTITY,
            today=today())
        await shared_demands.receive_decision(envelope(OfferDecision(
            origin=PEER_ORIGIN, recipient=IDENTITY.origin, demand_id=first.demand_id,
            offer_id=str(made.id), decision=decision, reason=f"{decision} by the buyer",
            issued_at=1)), IDENTITY, directory, refusals)
        peer_offers.append(made.id)

    return Demanded(
        fulfilled=fulfilled, bare=bare, open_offer=open_offer,
        buyer_declined_offer=buyer_declined_offer, accepted_offer=accepted_offer,
        declined_with_match=declined_with_match, withdrawn=withdrawn,
        declined_with_withdrawal=declined_with_withdrawal, ordered_offer=ordered_offer,
        accepted_then_ordered=accepted_then_ordered, expired=expired,
        expired_offer=expired_offer, foreign_matched=foreign_matched,
        foreign_accepted=foreign_accepted, foreign_buyer_declined=foreign_buyer_declined,
        peer_demand=received.demand.id, peer_demand_untouched=untouched.demand.id,
        peer_offer_declined=peer_offers[0], peer_offer_accepted=peer_offers[1])


SOURCES = (DemandRecords(), DemandOfferRecords(), ForeignOfferRecords(), PeerDemandRecords(),
           PeerOfferRecords())
# Where each table's rows are reported, and the subject each row's key makes.
WHERE = {"trading_demands": "demands demand", "trading_offers": "demand_offers offer",
         "trading_foreign_offers": "foreign_offers offer",
         "trading_peer_demands": "peer_demands peer_demand",
         "trading_peer_demand_offers": "peer_offers offer"}


def where(table: str, key: UUID) -> str:
    return f"{WHERE[table]}:{key}"


async def test_a_realistic_demand_history_reconciles_clean(db: str) -> None:
    await demand_trade()
    logged = {row["kind"] for row in await LedgerLeaf.select(LedgerLeaf.kind).run()}
    # The run logs every kind the sources own, so a clean report is about all of them.
    assert frozenset().union(*(source.kinds for source in SOURCES)) <= logged
    assert (await run()).discrepancies == []
    assert await unchecked_kinds() == set()


@pytest.mark.parametrize(("table", "assignment", "row", "leaves", "detail"), [
    # The posting leaf logged the terms; the matching and closing leaves the state.
    ("trading_demands", "budget_minor_per_unit = 1", "fulfilled", 1,
     "payload.budget_minor_per_unit"),
    ("trading_demands", "deadline = deadline + 30", "bare", 1, "payload.deadline"),
    ("trading_demands", "visibility = 'public_pool'", "withdrawn", 1, "payload.visibility"),
    ("trading_demands", "close_reason = 'fulfilled'", "withdrawn", 1, "payload.close_reason"),
    ("trading_demands", "state = 'open', close_reason = NULL", "expired", 1, "payload.state"),
    # An offer's every leaf logged its price; its newest leaf the decision and the order.
    ("trading_offers", "price_minor = 1", "accepted_offer", 2, "payload.price_minor"),
    ("trading_offers", "product_id = gen_random_uuid()", "open_offer", 1, "payload.product_id"),
    ("trading_offers", "order_id = NULL", "ordered_offer", 1, "payload.order_id"),
    ("trading_offers", "decline_reason = 'demand closed: fulfilled'",
     "declined_with_withdrawal", 1, "payload.reason"),
    ("trading_offers", "decline_reason = 'another offer was accepted'", "buyer_declined_offer",
     1, "payload.reason"),
    ("trading_foreign_offers", "price_minor = 1", "foreign_accepted", 2, "payload.price_minor"),
    ("trading_foreign_offers", "registration_code = 'FORGED-1'", "declined_with_match", 2,
     "payload.registration_code"),
    ("trading_foreign_offers", "decision_reason = 'declined by the buyer'",
     "declined_with_match", 1, "payload.reason"),
    ("trading_peer_demands", "version = 1", "peer_demand", 1, "payload.version"),
    ("trading_peer_demands", "state = 'closed', close_reason = 'withdrawn'",
     "peer_demand_untouched", 1, "payload.state"),
    ("trading_peer_demand_offers", "price_minor = 1", "peer_offer_accepted", 2,
     "payload.price_minor"),
    ("trading_peer_demand_offers", "decision_reason = '改了'", "peer_offer_declined", 1,
     "payload.reason"),
])
async def test_rows_changed_after_logging_are_reported(  # noqa: PLR0917 -- one per case column
        db: str, table: str, assignment: str, row: str, leaves: int, detail: str) -> None:
    trade = await demand_trade()
    key = getattr(trade, row)
    await tamper(db, f"UPDATE {table} SET {assignment} WHERE id = $1", key)  # noqa: S608 -- test constants
    report = await run()
    assert findings(report) == [(CHANGED, where(table, key))] * leaves
    assert all(detail in item.detail for item in report.discrepancies)


@pytest.mark.parametrize(("table", "row"), [
    ("trading_demands", "bare"),
    ("trading_offers", "open_offer"),
    ("trading_offers", "expired_offer"),
    ("trading_foreign_offers", "foreign_buyer_declined"),
    ("trading_peer_demands", "peer_demand_untouched"),
    ("trading_peer_demand_offers", "peer_offer_declined"),
])
async def test_a_deleted_row_leaves_its_leaves_unclaimed(db: str, table: str, row: str) -> None:
    trade = await demand_trade()
    key = getattr(trade, row)
    # Foreign keys (triggers) off: what an attacker deleting rows would not be held back by.
    await tamper(db, f"DELETE FROM {table} WHERE id = $1", key, triggers=False)  # noqa: S608 -- test constants
    report = await run()
    assert findings(report) == [(MISSING, where(table, key))]


async def test_a_deleted_accepted_offer_leaves_its_demand_matched_by_nothing(db: str) -> None:
    trade = await demand_trade()
    await tamper(db, "DELETE FROM trading_offers WHERE id = $1", trade.accepted_offer)
    report = await run()
    # Its demand now reads as closed while open: the closing leaf logged it was matched.
    assert findings(report) == [(CHANGED, where("trading_demands", trade.fulfilled)),
                                (MISSING, where("trading_offers", trade.accepted_offer))]
    assert report.discrepancies[0].detail.endswith("in payload.from_state")


@pytest.mark.parametrize(("table", "row", "unique", "leaves"), [
    ("trading_demands", "bare", {}, 1),
    # Its leaf as made is looked for by its state, and its newest leaf by its subject.
    ("trading_offers", "buyer_declined_offer", {}, 2),
    ("trading_foreign_offers", "foreign_buyer_declined", {"remote_offer_id": uuid4()}, 2),
    ("trading_peer_demands", "peer_demand", {"remote_demand_id": uuid4()}, 1),
    ("trading_peer_demand_offers", "peer_offer_accepted", {}, 2),
])
async def test_a_row_added_in_sql_is_not_logged(
        db: str, table: str, row: str, unique: dict[str, UUID], leaves: int) -> None:
    trade = await demand_trade()
    copy = uuid4()
    await tamper(
        db, f"INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, "  # noqa: S608 -- test constants
        "to_jsonb(original) || $2::jsonb)).* FROM {table} original WHERE id = $1".replace(
            "{table}", table),
        getattr(trade, row), msgspec.json.encode({"id": copy, **unique}).decode())
    report = await run()
    assert findings(report) == [(NOT_LOGGED, where(table, copy))] * leaves


async def test_an_offer_declined_before_its_reason_was_kept_is_compared_on_what_all_log(
        db: str) -> None:
    trade = await demand_trade()
    for offer in (trade.buyer_declined_offer, trade.declined_with_withdrawal):
        await tamper(db, "UPDATE trading_offers SET decline_reason = NULL WHERE id = $1", offer)
    assert (await run()).discrepancies == []
    await tamper(db, "UPDATE trading_offers SET price_minor = 1 WHERE id = $1",
                 trade.buyer_declined_offer)
    # Its leaf as made still logs the whole offer.
    report = await run()
    assert findings(report) == [(CHANGED, where("trading_offers", trade.buyer_declined_offer))]
