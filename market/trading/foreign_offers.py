"""Offers that peer exchanges send back on this exchange's shared demands (issue 7 §4).

A peer's operator answers a public-pool demand with one of the products listed at the peer;
the peer signs the offer and POSTs it here. It is kept only if it passes the checks of
``shared_inbox`` and answers an open public-pool demand of this exchange within the buyer's
purpose, delivery forms and budget (the peer checked its own list price and cap; this exchange
cannot, and does not take the peer's word on anything it can check). The buyer then sees it
among the local offers, marked with the offering exchange.

This exchange decides for the buyer, and tells the offering exchange every decision as a signed
``OfferDecision``: an acceptance, a decline by the buyer, and the declines that follow when the
demand is matched by another offer or closed (``decline_pending``, called by the demand use
cases in their transactions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from piccolo.engine.postgres import PostgresTransaction

from ledger.entries import JSONValue
from ledger.log import append_record
from listings.domains import ChargingUnit, DeliveryForm, Purpose
from listings.product import Price
from market.errors import ConflictError, InvalidInputError, NotFoundError
from market.trading import notifications, shared_outbox, shared_store, store
from market.trading.offer_terms import check_within_budget
from market.trading.shared_identity import ExchangeIdentity, PeerDirectory, RefusalLog
from market.trading.shared_inbox import parse_uuid, refusing, verify, vocabulary
from market.trading.shared_messages import OfferDecision, SharedOffer, SignedEnvelope
from market.trading.shared_store import ForeignOfferRecord, ForeignOfferValues
from market.trading.store import DemandRecord, DemandState, OfferState, Visibility
from market.trading.tables import DemandRow

RecordLedger = Callable[[str, str, dict[str, JSONValue]], None]

RECEIVED_KIND = "foreign_offer.received"


def decision_kind(decision: OfferState) -> str:
    """The ledger kind of the buyer's decision (or the demand's) on a peer's offer."""
    return f"foreign_offer.{decision.value}"


def _transaction() -> PostgresTransaction:
    transaction: PostgresTransaction = DemandRow._meta.db.transaction()
    return transaction


def foreign_offer_payload(offer: ForeignOfferRecord) -> dict[str, JSONValue]:
    return {
        "offer_id": str(offer.id), "demand_id": str(offer.demand_id),
        "peer_origin": offer.peer_origin, "remote_offer_id": str(offer.remote_offer_id),
        "product_id": str(offer.product_id), "registration_code": offer.registration_code,
        "purpose": offer.price.purpose.value, "unit": offer.price.unit.value,
        "price_minor": offer.price.price_minor, "currency": offer.price.currency,
        "state": offer.state.value,
    }


def _values(record: DemandRecord, message: SharedOffer, peer_origin: str) -> ForeignOfferValues:
    demand = record.demand
    purpose = vocabulary(Purpose, message.purpose, "message.purpose")
    if purpose is not demand.purpose:
        raise InvalidInputError(f"the demand is for {demand.purpose.value} use",
                                field="message.purpose")
    form = vocabulary(DeliveryForm, message.delivery_form, "message.deliveryForm")
    if form not in demand.delivery_forms:
        raise InvalidInputError(f"the buyer does not accept {form.value} delivery",
                                field="message.deliveryForm")
    if message.currency != shared_outbox.DEMAND_CURRENCY:
        raise InvalidInputError(f"the budget is in {shared_outbox.DEMAND_CURRENCY}",
                                field="message.currency")
    unit = vocabulary(ChargingUnit, message.unit, "message.unit")
    check_within_budget(demand, unit, message.price_minor, unit_field="message.unit",
                        price_field="message.priceMinor")
    return ForeignOfferValues(
        demand_id=record.id, peer_origin=peer_origin, exchange_name=message.exchange_name,
        remote_offer_id=parse_uuid(message.offer_id, "message.offerId"),
        demand_version=message.demand_version,
        product_id=parse_uuid(message.product_id, "message.productId"),
        product_title=message.product_title,
        operator_id=parse_uuid(message.operator_id, "message.operatorId"),
        operator_name=message.operator_name, registration_code=message.registration_code,
        delivery_form=form, price=Price(purpose, unit, message.price_minor, message.currency),
        message=message.message)


@dataclass(frozen=True)
class ReceivedOffer:
    offer: ForeignOfferRecord
    # True when this very message was received before (a re-delivery): nothing was written.
    duplicate: bool


async def _reload(offer_id: UUID) -> ForeignOfferRecord:
    offer = await shared_store.foreign_offer(offer_id)
    if offer is None:  # pragma: no cover - read back inside the writing transaction
        raise RuntimeError("the offer vanished")
    return offer


async def receive(envelope: SignedEnvelope, identity: ExchangeIdentity,
                  directory: PeerDirectory, refusals: RefusalLog, *, today: date
                  ) -> ReceivedOffer:
    """Keep a peer's signed offer on an open public-pool demand and tell the buyer."""

    async def work() -> ReceivedOffer:
        verified = await verify(SharedOffer, envelope, identity, directory)
        message, peer = verified.message, verified.peer
        demand_id = parse_uuid(message.demand_id, "message.demandId")
        remote_offer_id = parse_uuid(message.offer_id, "message.offerId")
        async with _transaction():
            existing = await shared_store.foreign_offer_by_remote(peer.origin, remote_offer_id)
            if existing is not None:
                if existing.digest == verified.digest:
                    return ReceivedOffer(existing, duplicate=True)
                raise ConflictError(f"offer {remote_offer_id} from {peer.origin!r} was "
                                    "received before with other content", field="message.offerId")
            record = await store.get_demand(demand_id, lock=True)
            if record is None or record.visibility is not Visibility.PUBLIC_POOL:
                raise NotFoundError("no such shared demand", field="message.demandId")
            if record.state is not DemandState.OPEN or record.demand.deadline < today:
                raise ConflictError("the demand is no longer open for offers",
                                    field="message.demandId")
            values = _values(record, message, peer.origin)
            offer_id = uuid4()
            now = datetime.now(UTC)
            await shared_store.insert_foreign_offer(
                offer_id, values, digest=verified.digest, signed_message=envelope.message,
                signature=verified.signature, now=now)
            offer = await _reload(offer_id)
            await notifications.notify(
                record.buyer_org_id, "offer.made", f"offer:{offer_id}",
                {"offer_id": str(offer_id), "demand_id": str(demand_id),
                 "exchange": {"name": peer.name, "origin": peer.origin},
                 "product_title": values.product_title, "unit": values.price.unit.value,
                 "price_minor": values.price.price_minor}, now=now)
            await append_record(RECEIVED_KIND, actor=f"peer:{peer.origin}",
                                subject=f"offer:{offer_id}", payload=foreign_offer_payload(offer))
        return ReceivedOffer(offer, duplicate=False)

    return await refusing("shared_offer", envelope, refusals, work)


def decision_message(offer: ForeignOfferRecord, decision: OfferState, reason: str
                     ) -> OfferDecision:
    """The decision as the offering exchange is told it; origin and issue time are filled in
    when it is sent."""
    return OfferDecision(origin="", recipient=offer.peer_origin, demand_id=str(offer.demand_id),
                         offer_id=str(offer.remote_offer_id), decision=decision.value,
                         reason=reason, issued_at=0)


async def decide(offer: ForeignOfferRecord, decision: OfferState, reason: str,
                 now: datetime) -> ForeignOfferRecord:
    """Record the decision on a pending offer and queue it for the offering exchange, in the
    caller's transaction; the caller appends the ledger record."""
    await shared_store.decide_foreign_offer(offer.id, decision, reason, now)
    await shared_outbox.queue_message(decision_message(offer, decision, reason), offer.id, now)
    return await _reload(offer.id)


async def decline_pending(record_ledger: RecordLedger, demand_id: UUID, reason: str,
                          now: datetime) -> None:
    """Decline the demand's pending offers from peers (it is matched or closed)."""
    for offer in await shared_store.list_foreign_offers(demand_id):
        if offer.state is OfferState.PENDING:
            declined = await decide(offer, OfferState.DECLINED, reason, now)
            payload = foreign_offer_payload(declined)
            payload["reason"] = reason
            record_ledger(decision_kind(OfferState.DECLINED), f"offer:{offer.id}", payload)
