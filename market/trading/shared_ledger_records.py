"""Demand shared across exchanges as the ledger should have logged it, for reconciliation: the
offers peers sent on this exchange's demands, the peers' demands received here and the offers
this exchange's operators made on them. Built as ``demand_ledger_records`` builds demands and
their offers (rows through the use cases' payload functions, leaves found by their state)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from uuid import UUID

from ledger.entries import JSONValue
from ledger.reconcile import ExpectedRecord
from market.accounts.model import Role
from market.trading import shared_store
from market.trading.demand_ledger_records import (
    buyer_actor,
    declined_with_demand_actor,
    demand_buyers,
    lifecycle,
)
from market.trading.demands import BUYER_DECLINE_REASON, organisation_actor
from market.trading.foreign_offers import RECEIVED_KIND, decision_kind, foreign_offer_payload
from market.trading.shared_demands import (
    PEER_DEMAND_RECEIVED,
    PEER_OFFER_MADE,
    peer_offer_decision_kind,
    peer_offer_payload,
    received_payload,
)
from market.trading.shared_store import ForeignOfferRecord
from market.trading.store import OfferState

_DECISIONS = (OfferState.ACCEPTED, OfferState.DECLINED)


class ForeignOfferRecords:
    """A peer's offer on one of this exchange's demands: its leaf as received, and the buyer's
    decision (or the decline that followed the demand)."""

    name = "foreign_offers"
    kinds = frozenset({RECEIVED_KIND, *(decision_kind(state) for state in _DECISIONS)})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        buyers = await demand_buyers()
        for offer in await shared_store.list_foreign_offers(None):
            received = ExpectedRecord(
                f"offer:{offer.id}", RECEIVED_KIND,
                foreign_offer_payload(replace(offer, state=OfferState.PENDING)),
                actor=f"peer:{offer.peer_origin}")
            if offer.state is OfferState.PENDING:
                records = lifecycle(received)
            else:
                records = lifecycle(received,
                                    _foreign_decision(offer, buyers.get(offer.demand_id)))
            for expected in records:
                yield expected


def _foreign_decision(offer: ForeignOfferRecord, buyer_org_id: UUID | None) -> ExpectedRecord:
    payload = foreign_offer_payload(offer)
    actor = buyer_actor(buyer_org_id)
    reason = offer.decision_reason
    if offer.state is OfferState.DECLINED and reason != BUYER_DECLINE_REASON:
        # Declined with the demand: the leaf logs why; the buyer's own decline does not.
        payload["reason"] = reason
        actor = declined_with_demand_actor(reason, buyer_org_id)
    return ExpectedRecord(f"offer:{offer.id}", decision_kind(offer.state), payload, actor=actor)


class PeerDemandRecords:
    """A peer's shared demand logs a leaf for each version received; the row keeps the latest
    version only, whose leaf is the subject's newest, so the earlier ones are its history."""

    name = "peer_demands"
    kinds = frozenset({PEER_DEMAND_RECEIVED})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        for record in await shared_store.list_peer_demands():
            yield ExpectedRecord(f"peer_demand:{record.id}", PEER_DEMAND_RECEIVED,
                                 received_payload(record), actor=f"peer:{record.origin}")


class PeerOfferRecords:
    """An offer made here on a peer's demand: its leaf as made, and the buyer's decision the
    demand's exchange sent back."""

    name = "peer_offers"
    kinds = frozenset({PEER_OFFER_MADE, *(peer_offer_decision_kind(state) for state in _DECISIONS)})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        peer_demands = {record.id: record for record in await shared_store.list_peer_demands()}
        for offer in await shared_store.list_peer_offers():
            demand = peer_demands.get(offer.peer_demand_id)
            if demand is None:
                # The peer demand's row is gone (its leaves show it): the offer's leaves log the
                # demand's origin and id, so they cannot be rebuilt and are left unclaimed.
                continue
            subject = f"offer:{offer.id}"
            made = ExpectedRecord(
                subject, PEER_OFFER_MADE,
                peer_offer_payload(replace(offer, state=OfferState.PENDING), demand),
                actor=organisation_actor(Role.OPERATOR, offer.operator_org_id))
            if offer.state is OfferState.PENDING:
                records = lifecycle(made)
            else:
                decided: dict[str, JSONValue] = peer_offer_payload(offer, demand)
                decided["reason"] = offer.decision_reason
                records = lifecycle(made, ExpectedRecord(
                    subject, peer_offer_decision_kind(offer.state), decided,
                    actor=f"peer:{demand.origin}"))
            for expected in records:
                yield expected
