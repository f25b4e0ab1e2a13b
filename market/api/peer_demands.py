"""Demand shared across exchanges over HTTP (一地提出,全国响应).

Between exchanges (public routes: the only credential is the EIP-712 signature of the sending
exchange's admitted chain key, checked on every message):

* ``POST /peer/demands``: a version of a peer's public-pool demand;
* ``POST /peer/offers``: a peer operator's offer on one of this exchange's demands;
* ``POST /peer/offer-decisions``: the buyer's decision on an offer made here.

A refused message answers a problem naming the field at fault and is kept for staff (GET
/peers/refusals). For this exchange's people: operators find peers' demands and offer on them
(``/peer-demands``); a buyer sees peers' offers among its demand's offers and accepts or
declines them (``/demands/{id}/foreign-offers``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from listings.domains import ChargingUnit
from market.accounts.model import Role
from market.api.access import Caller, public, roles
from market.api.demands import PRINCIPAL, OfferIn, OfferingExchangeOut, PriceOut, price_out
from market.api.listings_common import Labelled, labelled, vocabulary
from market.errors import MarketError
from market.ledger_wiring import identity_from_settings
from market.peering import directory, refusals
from market.settings import Settings
from market.trading import (
    demands,
    foreign_offer_decisions,
    foreign_offers,
    matching_service,
    shared_demands,
)
from market.trading.shared_identity import ExchangeIdentity
from market.trading.shared_messages import SignedEnvelope
from market.trading.shared_store import ForeignOfferRecord, PeerDemandRecord, PeerOfferRecord

Identity = NamedDependency[ExchangeIdentity]


class SharingUnavailableError(MarketError):
    problem = "service-unavailable"
    status = 503
    title = "Service unavailable"


class ReceivedOut(msgspec.Struct):
    """What the receiving exchange kept: its own id for the record, and whether the message
    was a re-delivery of one already kept (then nothing changed)."""

    id: UUID
    duplicate: bool


class UnitBudgetOut(msgspec.Struct):
    unit: Labelled
    budget_minor: int


class PeerDemandOut(msgspec.Struct):
    id: UUID
    origin: str
    remote_demand_id: UUID
    version: int
    title: str
    description: str
    domains: list[Labelled]
    purpose: Labelled
    budget_minor_per_unit: int | None
    unit_budgets: list[UnitBudgetOut]
    currency: str
    delivery_forms: list[Labelled]
    grade_clearance: Labelled
    deadline: str
    state: Labelled
    close_reason: Labelled | None
    received_at: datetime
    updated_at: datetime


class PeerDemandItemOut(msgspec.Struct):
    demand: PeerDemandOut
    # The caller's own listed products that match the demand, best first.
    matching_product_ids: list[UUID]


class PeerOfferOut(msgspec.Struct):
    id: UUID
    peer_demand_id: UUID
    operator_org_id: UUID
    product_id: UUID
    price: PriceOut
    message: str
    state: Labelled
    decision_reason: str
    created_at: datetime
    decided_at: datetime | None


class ForeignOfferOut(msgspec.Struct):
    """A peer's offer on the buyer's demand: the product and operator are the offering
    exchange's, and the order for it is placed there."""

    id: UUID
    demand_id: UUID
    exchange: OfferingExchangeOut
    product_id: UUID
    product_title: str
    operator_id: UUID
    operator_name: str
    registration_code: str
    delivery_form: Labelled
    price: PriceOut
    message: str
    state: Labelled
    decision_reason: str
    received_at: datetime
    decided_at: datetime | None


def peer_demand_out(record: PeerDemandRecord) -> PeerDemandOut:
    demand = record.demand
    return PeerDemandOut(
        id=record.id, origin=record.origin, remote_demand_id=record.remote_demand_id,
        version=record.version, title=demand.title, description=demand.description,
        domains=[labelled(domain) for domain in sorted(demand.domains)],
        purpose=labelled(demand.purpose), budget_minor_per_unit=demand.budget_minor_per_unit,
        unit_budgets=[UnitBudgetOut(unit=labelled(unit), budget_minor=amount)
                      for unit, amount in sorted(demand.unit_budgets_minor.items())],
        currency=record.currency,
        delivery_forms=[labelled(form) for form in sorted(demand.delivery_forms)],
        grade_clearance=labelled(demand.grade_clearance), deadline=demand.deadline.isoformat(),
        state=labelled(record.state),
        close_reason=None if record.close_reason is None else labelled(record.close_reason),
        received_at=record.received_at, updated_at=record.updated_at)


def peer_offer_out(record: PeerOfferRecord) -> PeerOfferOut:
    return PeerOfferOut(
        id=record.id, peer_demand_id=record.peer_demand_id,
        operator_org_id=record.operator_org_id, product_id=record.product_id,
        price=price_out(record.price), message=record.message, state=labelled(record.state),
        decision_reason=record.decision_reason, created_at=record.created_at,
        decided_at=record.decided_at)


def foreign_offer_out(record: ForeignOfferRecord) -> ForeignOfferOut:
    return ForeignOfferOut(
        id=record.id, demand_id=record.demand_id,
        exchange=OfferingExchangeOut(name=record.exchange_name, origin=record.peer_origin),
        product_id=record.product_id, product_title=record.product_title,
        operator_id=record.operator_id, operator_name=record.operator_name,
        registration_code=record.registration_code, delivery_form=labelled(record.delivery_form),
        price=price_out(record.price), message=record.message, state=labelled(record.state),
        decision_reason=record.decision_reason, received_at=record.received_at,
        decided_at=record.decided_at)


class PeerInboxController(Controller):
    path = "/peer"
    tags = ["peer exchanges"]
    opt = public()

    @post("/demands", status_code=200,
          summary="A peer exchange shares a version of a public-pool demand (EIP-712 signed)")
    async def receive_demand(self, identity: Identity,
                             data: JSONBody[SignedEnvelope]) -> ReceivedOut:
        received = await shared_demands.receive(data, identity, directory, refusals,
                                                matching_service.current())
        return ReceivedOut(id=received.demand.id, duplicate=received.duplicate)

    @post("/offers", status_code=200,
          summary="A peer exchange's operator offers a product on a demand shared from here "
                  "(EIP-712 signed)")
    async def receive_offer(self, identity: Identity,
                            data: JSONBody[SignedEnvelope]) -> ReceivedOut:
        received = await foreign_offers.receive(data, identity, directory, refusals,
                                                today=matching_service.current().today())
        return ReceivedOut(id=received.offer.id, duplicate=received.duplicate)

    @post("/offer-decisions", status_code=200,
          summary="The demand's exchange tells the buyer's decision on an offer made here "
                  "(EIP-712 signed)")
    async def receive_decision(self, identity: Identity,
                               data: JSONBody[SignedEnvelope]) -> ReceivedOut:
        received = await shared_demands.receive_decision(data, identity, directory, refusals)
        return ReceivedOut(id=received.offer.id, duplicate=received.duplicate)


class PeerDemandController(Controller):
    path = "/peer-demands"
    tags = ["peer exchanges", "demand"]
    dependencies = PRINCIPAL
    opt = roles(Role.OPERATOR, Role.STAFF, Role.REGULATOR)

    @get("/", summary="Peers' shared demands: the open ones for an operator (those its listed "
                      "products match first, with the products), all for staff")
    async def list_peer_demands(self, principal: Caller) -> list[PeerDemandItemOut]:
        found = await shared_demands.list_for(principal, matching_service.current())
        return [PeerDemandItemOut(demand=peer_demand_out(item.record),
                                  matching_product_ids=[UUID(m.product_id) for m in item.matches])
                for item in found]

    @get("/{peer_demand_id:uuid}", summary="One peer demand")
    async def get_peer_demand(self, principal: Caller,
                              peer_demand_id: FromPath[UUID]) -> PeerDemandOut:
        return peer_demand_out(await shared_demands.get(principal, peer_demand_id))

    @get("/{peer_demand_id:uuid}/offers",
         summary="Offers made here on a peer demand: an operator's own, all for staff")
    async def list_peer_offers(self, principal: Caller,
                               peer_demand_id: FromPath[UUID]) -> list[PeerOfferOut]:
        return [peer_offer_out(r) for r in await shared_demands.offers(principal, peer_demand_id)]

    @post("/{peer_demand_id:uuid}/offers", opt=roles(Role.OPERATOR), status_code=201,
          summary="Offer one of the operator's listed products on a peer demand, within its "
                  "list price and the buyer's budget; it is sent, signed, to the demand's "
                  "exchange")
    async def make_peer_offer(self, principal: Caller, identity: Identity,
                              peer_demand_id: FromPath[UUID],
                              data: JSONBody[OfferIn]) -> PeerOfferOut:
        offer = demands.NewOffer(product_id=data.product_id,
                                 unit=vocabulary(ChargingUnit, data.unit, "unit"),
                                 price_minor=data.price_minor, message=data.message)
        today = matching_service.current().today()
        return peer_offer_out(await shared_demands.make_offer(
            principal, peer_demand_id, offer, identity, today=today))


class ForeignOfferController(Controller):
    path = "/demands/{demand_id:uuid}/foreign-offers"
    tags = ["peer exchanges", "demand"]
    dependencies = PRINCIPAL
    opt = roles(Role.BUYER, Role.STAFF, Role.REGULATOR)

    @get("/", summary="Peer exchanges' offers on the buyer's demand, each with its exchange")
    async def list_foreign_offers(self, principal: Caller,
                                  demand_id: FromPath[UUID]) -> list[ForeignOfferOut]:
        return [foreign_offer_out(r)
                for r in await foreign_offer_decisions.list_for(principal, demand_id)]

    @post("/{offer_id:uuid}/accept", opt=roles(Role.BUYER), status_code=200,
          summary="Accept a peer's offer (buyer): the demand is matched and the offering "
                  "exchange is told; the order is placed at the offering exchange")
    async def accept_foreign_offer(self, principal: Caller, demand_id: FromPath[UUID],
                                   offer_id: FromPath[UUID]) -> ForeignOfferOut:
        return foreign_offer_out(
            await foreign_offer_decisions.accept(principal, demand_id, offer_id))

    @post("/{offer_id:uuid}/decline", opt=roles(Role.BUYER), status_code=200,
          summary="Decline a peer's offer (buyer); the offering exchange is told")
    async def decline_foreign_offer(self, principal: Caller, demand_id: FromPath[UUID],
                                    offer_id: FromPath[UUID]) -> ForeignOfferOut:
        return foreign_offer_out(
            await foreign_offer_decisions.decline(principal, demand_id, offer_id))


def peer_demand_router(settings: Settings) -> Router:
    """The routes of shared demand; this exchange's identity is resolved on first use (the
    chain id may have to be asked of the node)."""
    resolved: dict[str, ExchangeIdentity | None] = {}

    async def provide_identity() -> ExchangeIdentity:
        if "identity" not in resolved:
            resolved["identity"] = await identity_from_settings(settings)
        identity = resolved["identity"]
        if identity is None:
            raise SharingUnavailableError(
                "this exchange shares no demand: it has no chain key or ledger contract set")
        return identity

    handlers: list[Any] = [PeerInboxController, PeerDemandController, ForeignOfferController]
    return Router(path="/", route_handlers=handlers,
                  dependencies={"identity": Provide(provide_identity)})
