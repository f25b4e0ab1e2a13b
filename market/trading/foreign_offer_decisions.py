"""The buyer's side of peers' offers on its demand: see them beside the local offers, accept
one (the demand is matched, as by a local offer) or decline it. Each decision is recorded here
and sent, signed, to the offering exchange, where the operator sees it.

An accepted offer from a peer is not an order: the product is sold at the offering exchange,
under its operator's authorization, cap and ceiling, and the order is placed there. What this
exchange records is the buyer's explicit acceptance, visible at both exchanges.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from ledger.log import append_record
from market.accounts.model import Principal, Role
from market.errors import ConflictError, NotFoundError
from market.trading import demands, foreign_offers, shared_store
from market.trading.shared_store import ForeignOfferRecord
from market.trading.store import DemandRecord, DemandState, OfferState


async def list_for(caller: Principal, demand_id: UUID) -> list[ForeignOfferRecord]:
    """Peers' offers on the demand, for its buyer and staff; nothing for anyone else."""
    record = await demands.get(caller, demand_id)
    if caller.role not in {Role.BUYER, Role.STAFF, Role.REGULATOR}:
        return []
    return await shared_store.list_foreign_offers(record.id)


async def _buyers_pending(caller: Principal, demand_id: UUID, offer_id: UUID
                          ) -> tuple[ForeignOfferRecord, DemandRecord]:
    # The demand is locked first, as for local offers, so decisions on one demand queue.
    record = await demands.own_demand(caller, demand_id, lock=True)
    offer = await shared_store.foreign_offer(offer_id, lock=True)
    if offer is None or offer.demand_id != record.id:
        raise NotFoundError("no such offer", field="offer_id")
    if offer.state is not OfferState.PENDING:
        raise ConflictError(f"the offer is already {offer.state.value}", field="offer_id")
    return offer, record


async def accept(caller: Principal, demand_id: UUID, offer_id: UUID) -> ForeignOfferRecord:
    """The buyer accepts a peer's offer: the demand is matched and its other offers declined;
    the offering exchange is told, and peers get the demand's new version."""
    async with demands.transaction():
        offer, record = await _buyers_pending(caller, demand_id, offer_id)
        if record.state is not DemandState.OPEN:
            raise ConflictError(f"the demand is {record.state.value}, not open",
                                field="demand_id")
        now = datetime.now(UTC)
        accepted = await foreign_offers.decide(offer, OfferState.ACCEPTED,
                                               "accepted by the buyer", now)
        ledger = demands.LedgerRecords(demands.actor(caller))
        matched = await demands.match(ledger, record, now)
        ledger.add(foreign_offers.decision_kind(OfferState.ACCEPTED), f"offer:{offer.id}",
                   foreign_offers.foreign_offer_payload(accepted))
        demands.demand_record(ledger, demands.DEMAND_MATCHED, matched,
                              {"offer_id": str(offer.id)})
        await ledger.append()
    return accepted


async def decline(caller: Principal, demand_id: UUID, offer_id: UUID) -> ForeignOfferRecord:
    async with demands.transaction():
        offer, _record = await _buyers_pending(caller, demand_id, offer_id)
        declined = await foreign_offers.decide(offer, OfferState.DECLINED,
                                               demands.BUYER_DECLINE_REASON, datetime.now(UTC))
        # Unlike a decline that follows the demand, the buyer's logs no reason: the kept
        # reason tells the two apart when reconciliation rebuilds the leaf.
        await append_record(foreign_offers.decision_kind(OfferState.DECLINED),
                            actor=demands.actor(caller),
                            subject=f"offer:{offer.id}",
                            payload=foreign_offers.foreign_offer_payload(declined))
    return declined
