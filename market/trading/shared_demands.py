"""Peers' shared demands at this exchange (一地提出,全国响应: issue 7 §4): received, matched
against the local catalog, answered by local operators.

A peer POSTs each version of a public-pool demand, signed (``shared_inbox`` checks it). A
version is kept when it is newer than the one held; the same message again is a re-delivery
and changes nothing; another message with a version already held, or an older version, is a
replay and refused, as is an open demand whose deadline has passed. The first open version is
matched with this exchange's matcher, and the operators whose listed products match are told.
Later versions carry the demand's state: once matched or closed at its exchange, it takes no
more offers here.

An operator answers with one of its listed products under the same rules as for a local
demand (purpose, delivery form, grade, list price and so cap, budget); the offer is kept here
and sent back signed to the demand's exchange, which tells its buyer. The buyer's decision comes
back as a signed ``OfferDecision`` (``receive_decision``) and is shown to the operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from piccolo.engine.postgres import PostgresTransaction

from ledger.entries import JSONValue
from ledger.log import append_record
from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose
from market.accounts.model import Principal, Role
from market.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from market.trading import demands, notifications, shared_outbox, shared_store, store
from market.trading.matching import Demand, Match
from market.trading.matching_service import MatchingService
from market.trading.shared_identity import ExchangeIdentity, PeerDirectory, RefusalLog
from market.trading.shared_inbox import parse_uuid, refusing, verify, vocabulary
from market.trading.shared_messages import OfferDecision, SharedDemand, SharedOffer, SignedEnvelope
from market.trading.shared_store import PeerDemandRecord, PeerDemandValues, PeerOfferRecord
from market.trading.store import CloseReason, DemandState, OfferState
from market.trading.tables import DemandRow

_STAFF_ROLES = frozenset({Role.STAFF, Role.REGULATOR})

PEER_DEMAND_RECEIVED = "peer_demand.received"
PEER_OFFER_MADE = "peer_offer.made"


def peer_offer_decision_kind(decision: OfferState) -> str:
    """The ledger kind of a buyer's decision, sent by the demand's exchange, on an offer
    made here."""
    return f"peer_offer.{decision.value}"


def _transaction() -> PostgresTransaction:
    transaction: PostgresTransaction = DemandRow._meta.db.transaction()
    return transaction


def _values(message: SharedDemand, origin: str) -> PeerDemandValues:
    """The version's content, each value checked as for a demand posted here."""
    state = vocabulary(DemandState, message.state, "message.state")
    reason = (None if message.close_reason == ""
              else vocabulary(CloseReason, message.close_reason, "message.closeReason"))
    if (state is DemandState.CLOSED) != (reason is not None):
        raise InvalidInputError("a closed demand, and only a closed one, gives a reason",
                                field="message.closeReason")
    if message.currency != shared_outbox.DEMAND_CURRENCY:
        raise InvalidInputError(f"budgets here are in {shared_outbox.DEMAND_CURRENCY}",
                                field="message.currency")
    try:
        deadline = date.fromisoformat(message.deadline)
    except ValueError:
        raise InvalidInputError("must be an ISO date", field="message.deadline") from None
    title = message.title.strip()
    if not title or len(title) > demands.TITLE_MAX_LENGTH:
        raise InvalidInputError(f"must be 1 to {demands.TITLE_MAX_LENGTH} characters",
                                field="message.title")
    if message.version < 1:
        raise InvalidInputError("versions start at 1", field="message.version")
    units = [vocabulary(ChargingUnit, item.unit, f"message.unitBudgets[{index}].unit")
             for index, item in enumerate(message.unit_budgets)]
    values = PeerDemandValues(
        origin=origin, remote_demand_id=parse_uuid(message.demand_id, "message.demandId"),
        version=message.version, state=state, close_reason=reason, title=title,
        description=message.description,
        domains=frozenset(vocabulary(DataDomain, value, f"message.domains[{index}]")
                          for index, value in enumerate(message.domains)),
        purpose=vocabulary(Purpose, message.purpose, "message.purpose"),
        budget_minor_per_unit=(message.budget_minor_per_unit if message.has_budget_per_unit
                               else None),
        unit_budgets_minor={unit: item.amount_minor
                            for unit, item in zip(units, message.unit_budgets, strict=True)},
        currency=message.currency,
        delivery_forms=frozenset(vocabulary(DeliveryForm, value, f"message.deliveryForms[{index}]")
                                 for index, value in enumerate(message.delivery_forms)),
        grade_clearance=vocabulary(Grade, message.grade_clearance, "message.gradeClearance"),
        deadline=deadline)
    _matching_view(values)
    return values


def _matching_view(values: PeerDemandValues) -> Demand:
    """The values as the matcher takes them (which also checks domains, forms and budgets)."""
    return Demand(
        demand_id=str(values.remote_demand_id), buyer_org_id=values.origin, title=values.title,
        description=values.description, domains=values.domains, purpose=values.purpose,
        budget_minor_per_unit=values.budget_minor_per_unit,
        unit_budgets_minor=dict(values.unit_budgets_minor), delivery_forms=values.delivery_forms,
        grade_clearance=values.grade_clearance, deadline=values.deadline)


@dataclass(frozen=True)
class ReceivedDemand:
    demand: PeerDemandRecord
    # True when this very message was received before (a re-delivery): nothing was written.
    duplicate: bool
    operators_told: int


def _redelivered(held: PeerDemandRecord | None, values: PeerDemandValues, digest: str,
                 today: date) -> PeerDemandRecord | None:
    """The held version if this is a re-delivery of it; a replay or stale version, or an open
    demand past its deadline, is refused."""
    if held is not None and values.version == held.version:
        if held.digest == digest:
            return held
        raise ConflictError(f"version {values.version} of demand {values.remote_demand_id} was "
                            "received before with other content", field="message.version")
    if held is not None and values.version < held.version:
        raise ConflictError(f"version {values.version} is older than version {held.version} "
                            "held here", field="message.version")
    if values.state is not DemandState.CLOSED and values.deadline < today:
        raise InvalidInputError(f"the deadline {values.deadline} has passed",
                                field="message.deadline")
    return None


async def _tell_operators(record: PeerDemandRecord, matches: Sequence[Match],
                          service: MatchingService, now: datetime) -> int:
    by_operator: dict[str, list[str]] = {}
    for match in matches:
        product = service.products.get(match.product_id)
        if product is not None:
            by_operator.setdefault(product.operator_id, []).append(match.product_id)
    for operator, product_ids in sorted(by_operator.items()):
        await notifications.notify(
            UUID(operator), "peer_demand.matches_your_products", f"peer_demand:{record.id}",
            {"peer_demand_id": str(record.id), "origin": record.origin,
             "title": record.demand.title, "product_ids": product_ids}, now=now)
    return len(by_operator)


def received_payload(record: PeerDemandRecord) -> dict[str, JSONValue]:
    return {"peer_demand_id": str(record.id), "origin": record.origin,
            "remote_demand_id": str(record.remote_demand_id), "version": record.version,
            "state": record.state.value, "digest": record.digest}


async def receive(envelope: SignedEnvelope, identity: ExchangeIdentity,
                  directory: PeerDirectory, refusals: RefusalLog, service: MatchingService
                  ) -> ReceivedDemand:
    """Keep a peer's signed demand version; on its first open version, tell the operators
    whose listed products match it."""

    async def work() -> ReceivedDemand:
        verified = await verify(SharedDemand, envelope, identity, directory)
        values = _values(verified.message, verified.peer.origin)
        await service.sync()
        today = service.today()
        async with _transaction():
            held = await shared_store.peer_demand_by_remote(
                values.origin, values.remote_demand_id, lock=True)
            again = _redelivered(held, values, verified.digest, today)
            if again is not None:
                return ReceivedDemand(again, duplicate=True, operators_told=0)
            now = datetime.now(UTC)
            peer_demand_id = await shared_store.upsert_peer_demand(
                values, digest=verified.digest, signed_message=envelope.message,
                signature=verified.signature, now=now)
            record = await _reload(peer_demand_id)
            told = 0
            if held is None and record.state is DemandState.OPEN:
                matches = service.products.top_products(record.demand)
                told = await _tell_operators(record, matches, service, now)
            await append_record(PEER_DEMAND_RECEIVED, actor=f"peer:{values.origin}",
                                subject=f"peer_demand:{peer_demand_id}",
                                payload=received_payload(record))
        return ReceivedDemand(record, duplicate=False, operators_told=told)

    return await refusing("shared_demand", envelope, refusals, work)


async def _reload(peer_demand_id: UUID) -> PeerDemandRecord:
    record = await shared_store.peer_demand(peer_demand_id)
    if record is None:  # pragma: no cover - read back inside the writing transaction
        raise RuntimeError("the peer demand vanished")
    return record


# --- what operators and staff see -------------------------------------------------------------


@dataclass(frozen=True)
class PeerDemandForOperator:
    record: PeerDemandRecord
    # The operator's own listed products that match the demand, best first.
    matches: list[Match]


def _open(record: PeerDemandRecord, today: date) -> bool:
    return record.state is DemandState.OPEN and record.demand.deadline >= today


async def list_for(caller: Principal, service: MatchingService) -> list[PeerDemandForOperator]:
    """Every peer demand for staff and the regulator; for an operator, the open ones, each with
    the operator's matching products (those its products match come first)."""
    if caller.role in _STAFF_ROLES:
        return [PeerDemandForOperator(record, []) for record in
                await shared_store.list_peer_demands()]
    await service.sync()
    today = service.today()
    own = {product.product_id for product in service.operator_products(caller.organisation_id)}
    found = []
    for record in await shared_store.list_peer_demands(states=[DemandState.OPEN]):
        if _open(record, today):
            matches = [match for match in service.products.top_products(record.demand)
                       if match.product_id in own]
            found.append(PeerDemandForOperator(record, matches))
    found.sort(key=lambda item: not item.matches)
    return found


async def get(caller: Principal, peer_demand_id: UUID) -> PeerDemandRecord:
    """A peer demand: staff see any; an operator sees an open one or one it has offered on."""
    record = await shared_store.peer_demand(peer_demand_id)
    if record is not None and (
        caller.role in _STAFF_ROLES
        or record.state is DemandState.OPEN
        or await shared_store.list_peer_offers(peer_demand_id=record.id,
                                               operator_org_id=caller.organisation_id)
    ):
        return record
    raise NotFoundError("no such peer demand", field="peer_demand_id")


async def offers(caller: Principal, peer_demand_id: UUID) -> list[PeerOfferRecord]:
    """The offers made here on a peer demand: all for staff, an operator's own for it."""
    record = await get(caller, peer_demand_id)
    operator = None if caller.role in _STAFF_ROLES else caller.organisation_id
    return await shared_store.list_peer_offers(peer_demand_id=record.id,
                                               operator_org_id=operator)


def peer_offer_payload(offer: PeerOfferRecord, record: PeerDemandRecord
                        ) -> dict[str, JSONValue]:
    return {"offer_id": str(offer.id), "peer_demand_id": str(record.id),
            "origin": record.origin, "remote_demand_id": str(record.remote_demand_id),
            "operator_org_id": str(offer.operator_org_id), "product_id": str(offer.product_id),
            "purpose": offer.price.purpose.value, "unit": offer.price.unit.value,
            "price_minor": offer.price.price_minor, "currency": offer.price.currency,
            "state": offer.state.value}


async def _reload_offer(offer_id: UUID) -> PeerOfferRecord:
    offer = await shared_store.peer_offer(offer_id)
    if offer is None:  # pragma: no cover - read back inside the writing transaction
        raise RuntimeError("the offer vanished")
    return offer


async def make_offer(caller: Principal, peer_demand_id: UUID, offer: demands.NewOffer,
                     identity: ExchangeIdentity, *, today: date) -> PeerOfferRecord:
    """An operator offers one of its listed products on an open peer demand, under the rules
    of a local offer; the offer is sent back, signed, to the demand's exchange."""
    text = demands.offer_message(caller, offer)
    async with _transaction():
        record = await shared_store.peer_demand(peer_demand_id, lock=True)
        if record is None:
            raise NotFoundError("no such peer demand", field="peer_demand_id")
        if not _open(record, today):
            raise ConflictError("the demand is no longer open", field="peer_demand_id")
        product, price = await demands.checked_offer(caller, record.demand, offer, today)
        if await shared_store.pending_peer_offer_exists(record.id, offer.product_id):
            raise ConflictError("this product already has a pending offer for the demand",
                                field="product_id")
        offer_id = uuid4()
        now = datetime.now(UTC)
        await shared_store.insert_peer_offer(offer_id, record.id, caller.organisation_id,
                                             offer.product_id, price, text, now)
        stored = await _reload_offer(offer_id)
        names = await store.product_names([offer.product_id])
        _title, operator_name = names.get(offer.product_id, (product.title, ""))
        await shared_outbox.queue_message(SharedOffer(
            origin=identity.origin, recipient=record.origin,
            demand_id=str(record.remote_demand_id), demand_version=record.version,
            offer_id=str(offer_id), exchange_name=identity.name,
            product_id=product.product_id, product_title=product.title,
            operator_id=product.operator_id, operator_name=operator_name,
            registration_code=product.registration_code or "",
            delivery_form=product.delivery_form.value, purpose=price.purpose.value,
            unit=price.unit.value, price_minor=price.price_minor, currency=price.currency,
            message=text, issued_at=0), offer_id, now)
        await append_record(PEER_OFFER_MADE, actor=demands.actor(caller),
                            subject=f"offer:{offer_id}",
                            payload=peer_offer_payload(stored, record))
    return stored


async def operator_offers(caller: Principal) -> list[PeerOfferRecord]:
    if caller.role is not Role.OPERATOR:
        raise PermissionDeniedError("only operators make offers", field="role")
    return await shared_store.list_peer_offers(operator_org_id=caller.organisation_id)


# --- the buyer's decision, from the demand's exchange ----------------------------------------


@dataclass(frozen=True)
class ReceivedDecision:
    offer: PeerOfferRecord
    duplicate: bool


_DECISIONS = {OfferState.ACCEPTED.value: OfferState.ACCEPTED,
              OfferState.DECLINED.value: OfferState.DECLINED}


async def receive_decision(envelope: SignedEnvelope, identity: ExchangeIdentity,
                           directory: PeerDirectory, refusals: RefusalLog) -> ReceivedDecision:
    """Record the buyer's decision on an offer made here, sent by the demand's exchange, and
    tell the operator. Only the demand's own exchange decides on offers for its demand."""

    async def work() -> ReceivedDecision:
        verified = await verify(OfferDecision, envelope, identity, directory)
        message = verified.message
        decision = _DECISIONS.get(message.decision)
        if decision is None:
            raise InvalidInputError("must be accepted or declined", field="message.decision")
        offer_id = parse_uuid(message.offer_id, "message.offerId")
        async with _transaction():
            offer = await shared_store.peer_offer(offer_id, lock=True)
            record = None if offer is None else await shared_store.peer_demand(
                offer.peer_demand_id)
            if (offer is None or record is None or record.origin != verified.peer.origin
                    or str(record.remote_demand_id) != message.demand_id):
                raise NotFoundError("no offer was made here on that demand",
                                    field="message.offerId")
            if offer.state is not OfferState.PENDING:
                if offer.state is decision:
                    return ReceivedDecision(offer, duplicate=True)
                raise ConflictError(f"the offer was already {offer.state.value}",
                                    field="message.decision")
            now = datetime.now(UTC)
            await shared_store.decide_peer_offer(offer.id, decision, message.reason, now)
            decided = await _reload_offer(offer.id)
            await notifications.notify(
                offer.operator_org_id, f"peer_offer.{decision.value}", f"offer:{offer.id}",
                {"offer_id": str(offer.id), "peer_demand_id": str(record.id),
                 "origin": record.origin, "exchange": verified.peer.name,
                 "reason": message.reason}, now=now)
            payload = peer_offer_payload(decided, record)
            payload["reason"] = message.reason
            await append_record(peer_offer_decision_kind(decision),
                                actor=f"peer:{record.origin}",
                                subject=f"offer:{offer.id}", payload=payload)
        return ReceivedDecision(decided, duplicate=False)

    return await refusing("offer_decision", envelope, refusals, work)
