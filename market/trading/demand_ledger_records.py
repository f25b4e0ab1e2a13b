"""Demands and the offers on them as the ledger should have logged them, for reconciliation.

Queries run on the reconciliation's snapshot transaction (Piccolo binds them to it). Payloads
are rebuilt from the rows with the functions the use cases built them with, so that a row edited
after it was logged shows as changed, a row no leaf records as not logged, and a leaf no row
claims (a deleted offer, say) as missing from the database.

A demand's or an offer's row keeps no leaf index: each of its leaves logs a state the row passed
through once (a demand is open, then matched, then closed; an offer pending, then decided), so
the state a leaf logs names it among the subject's leaves (``lifecycle``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from uuid import UUID

from ledger.entries import JSONValue
from ledger.reconcile import ExpectedRecord
from market.accounts.model import Role
from market.trading import store
from market.trading.demands import (
    BUYER_DECLINE_REASON,
    DEMAND_CLOSED,
    DEMAND_EXPIRED,
    DEMAND_MATCHED,
    DEMAND_POSTED,
    EXPIRY_ACTOR,
    OFFER_ACCEPTED,
    OFFER_DECLINED,
    OFFER_MADE,
    OFFER_ORDERED,
    closed_decline_reason,
    declined_with_demand_payload,
    demand_payload,
    offer_payload,
    organisation_actor,
    posted_terms,
)
from market.trading.store import CloseReason, DemandRecord, DemandState, OfferRecord, OfferState
from market.trading.tables import DemandRow


def lifecycle(*records: ExpectedRecord) -> list[ExpectedRecord]:
    """A row's leaves, oldest first. Each earlier leaf is found by the state it logs; the newest
    must be the row as it stands, and claims the leaves between that the row cannot rebuild
    (an offer accepted, then ordered: the acceptance logged the order only when made at once)."""
    *earlier, newest = records
    return [replace(record, match_field="state") for record in earlier] + [newest]


def buyer_actor(buyer_org_id: UUID | None) -> str | None:
    # None when the demand's row is gone (reported as such): the actor is then not compared.
    return None if buyer_org_id is None else organisation_actor(Role.BUYER, buyer_org_id)


def declined_with_demand_actor(reason: str, buyer_org_id: UUID | None) -> str | None:
    """Who declined an offer with its demand: the expiry job when it closed the demand, else
    the buyer (who matched the demand with another offer, withdrew it or closed it)."""
    if reason == closed_decline_reason(CloseReason.EXPIRED):
        return EXPIRY_ACTOR
    return buyer_actor(buyer_org_id)


async def demand_buyers() -> dict[UUID, UUID]:
    """Each demand's buyer organisation, by demand id."""
    rows = await DemandRow.raw("SELECT id, buyer_org_id FROM trading_demands").run()
    return {row["id"]: row["buyer_org_id"] for row in rows}


class DemandRecords:
    """A demand's posting leaf (with its terms), its matching leaf naming the offer accepted,
    and its closing leaf."""

    name = "demands"
    kinds = frozenset({DEMAND_POSTED, DEMAND_MATCHED, DEMAND_CLOSED, DEMAND_EXPIRED})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        # Only matching a demand accepts an offer, this exchange's or a peer's, and a unique
        # index on each table holds at most one accepted offer per demand.
        rows = await DemandRow.raw(
            "SELECT demand_id, id FROM trading_offers WHERE state = 'accepted' UNION ALL "
            "SELECT demand_id, id FROM trading_foreign_offers WHERE state = 'accepted'").run()
        accepted = {row["demand_id"]: row["id"] for row in rows}
        for record in await store.list_demands():
            for expected in _demand_records(record, accepted.get(record.id)):
                yield expected


def _demand_records(record: DemandRecord, accepted_offer: UUID | None) -> list[ExpectedRecord]:
    subject = f"demand:{record.id}"
    buyer = buyer_actor(record.buyer_org_id)

    def when(state: DemandState) -> dict[str, JSONValue]:
        return demand_payload(replace(record, state=state, close_reason=None))

    records = [ExpectedRecord(subject, DEMAND_POSTED,
                              when(DemandState.OPEN) | posted_terms(record), actor=buyer)]
    matched = accepted_offer is not None or record.state is DemandState.MATCHED
    if matched:
        offer_id = None if accepted_offer is None else str(accepted_offer)
        records.append(ExpectedRecord(subject, DEMAND_MATCHED,
                                      when(DemandState.MATCHED) | {"offer_id": offer_id},
                                      actor=buyer))
    if record.state is DemandState.CLOSED:
        expired = record.close_reason is CloseReason.EXPIRED
        from_state = DemandState.MATCHED if matched else DemandState.OPEN
        records.append(ExpectedRecord(
            subject, DEMAND_EXPIRED if expired else DEMAND_CLOSED,
            demand_payload(record) | {"from_state": from_state.value},
            actor=EXPIRY_ACTOR if expired else buyer))
    return lifecycle(*records)


class DemandOfferRecords:
    """An operator's offer on a demand: its leaf as made, and the buyer's decision (or the
    decline that followed the demand)."""

    name = "demand_offers"
    kinds = frozenset({OFFER_MADE, OFFER_ACCEPTED, OFFER_DECLINED, OFFER_ORDERED})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        buyers = await demand_buyers()
        for offer in await store.list_offers():
            made = ExpectedRecord(
                f"offer:{offer.id}", OFFER_MADE,
                offer_payload(replace(offer, state=OfferState.PENDING, order_id=None)),
                actor=organisation_actor(Role.OPERATOR, offer.operator_org_id))
            decision = _offer_decision(offer, buyers.get(offer.demand_id))
            for expected in lifecycle(made) if decision is None else lifecycle(made, decision):
                yield expected


def _offer_decision(offer: OfferRecord, buyer_org_id: UUID | None) -> ExpectedRecord | None:
    subject = f"offer:{offer.id}"
    if offer.state is OfferState.PENDING:
        return None
    if offer.state is OfferState.ACCEPTED:
        kind = OFFER_ACCEPTED if offer.order_id is None else OFFER_ORDERED
        return ExpectedRecord(subject, kind, offer_payload(offer), actor=buyer_actor(buyer_org_id))
    reason = offer.decline_reason
    if reason is None:
        # Declined before the reason was kept (migration 2026-11-25T09:00): the row cannot
        # tell the buyer's decline from one that followed the demand, so only what both log
        # is compared.
        return ExpectedRecord(subject, OFFER_DECLINED, {"offer_id": str(offer.id),
                                                        "demand_id": str(offer.demand_id)},
                              exact=False)
    if reason == BUYER_DECLINE_REASON:
        return ExpectedRecord(subject, OFFER_DECLINED, offer_payload(offer),
                              actor=buyer_actor(buyer_org_id))
    return ExpectedRecord(subject, OFFER_DECLINED,
                          declined_with_demand_payload(offer.id, offer.demand_id, reason),
                          actor=declined_with_demand_actor(reason, buyer_org_id))
