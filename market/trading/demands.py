"""Use cases of demand (需求征集, MISSION §5): buyers post demand, operators ask and offer.

A demand's life::

    open ──buyer accepts an offer──▶ matched ──buyer: fulfilled──▶ closed (fulfilled)
      │                                 │
      └──── withdrawn by the buyer, or expired after its deadline ────▶ closed (withdrawn/expired)

Who sees what: a buyer sees its own organisation's demands only (another's answers 404). The
exchange's operators see the open demands, of either visibility, to answer them, and a demand
they have made an offer on or asked about; staff and the regulator see all. A public-pool
demand is also shared with peer exchanges (一地提出,全国响应); an exchange-only one is not: each
of its state changes is written as a new shared version in the same transaction
(``shared_outbox``), and peers' pending offers are declined with the local ones.

Every state change of a demand and of an offer is appended to the ledger in the transaction that
makes it, as its last step; each use case also leaves a notification for the other side.
Accepting an offer records the acceptance and leaves ``order_id`` empty. The buyer turns an offer
(pending, or accepted before) into an order with ``order_offer``: the order is placed through the
orders use case at the offer's price, and in the same transaction the offer records the order's
id (a pending offer is accepted and its demand matched, as ``accept_offer`` does).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from piccolo.engine.postgres import PostgresTransaction

from ledger.canonical import canonical_json
from ledger.entries import JSONValue
from ledger.log import append_record
from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose
from listings.product import Price, buyer_may_receive
from market.accounts.model import Principal, Role
from market.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from market.trading import clearances, foreign_offers, notifications, orders, shared_outbox, store
from market.trading.matching import (
    ALL_FILTERS,
    Demand,
    Explanation,
    ListedProduct,
    Match,
    MatchFilter,
    exclusions,
)
from market.trading.matching_service import MatchingService
from market.trading.offer_terms import check_within_budget
from market.trading.order_tables import connection
from market.trading.store import (
    CloseReason,
    DemandRecord,
    DemandState,
    OfferRecord,
    OfferState,
    QuestionRecord,
    Visibility,
)
from market.trading.tables import DemandRow, OfferRow

TITLE_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 2000
TEXT_MAX_LENGTH = 1000
# A demand that would stay open for years is a catalogue wish, not a call for offers.
MAX_DEADLINE = timedelta(days=366)
_HAN_CHARACTER = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_STAFF_ROLES = frozenset({Role.STAFF, Role.REGULATOR})

# The ledger kinds of demands and of offers on them (``demand_ledger_records`` rebuilds them).
DEMAND_POSTED = "demand.posted"
DEMAND_MATCHED = "demand.matched"
DEMAND_CLOSED = "demand.closed"
DEMAND_EXPIRED = "demand.expired"
OFFER_MADE = "offer.made"
OFFER_ACCEPTED = "offer.accepted"
OFFER_DECLINED = "offer.declined"
OFFER_ORDERED = "offer.ordered"
# Who closes a demand past its deadline, and declines its pending offers with it.
EXPIRY_ACTOR = "system:expiry"
# Why an offer is declined: kept on the offer (local or a peer's), and sent to a peer's.
BUYER_DECLINE_REASON = "declined by the buyer"
MATCHED_DECLINE_REASON = "another offer was accepted"


def closed_decline_reason(reason: CloseReason) -> str:
    return f"demand closed: {reason.value}"


def _now() -> datetime:
    return datetime.now(UTC)


def transaction() -> PostgresTransaction:
    # Every trading table lives on the one engine Piccolo's configuration names.
    transaction: PostgresTransaction = DemandRow._meta.db.transaction()
    return transaction


def organisation_actor(role: Role, organisation_id: UUID) -> str:
    # Ledger records name organisations, never people (as listings.context.Actor does).
    return f"{role.value}:{organisation_id}"


def actor(caller: Principal) -> str:
    return organisation_actor(caller.role, caller.organisation_id)


def _text(field: str, value: str, *, max_length: int, chinese: bool = False) -> str:
    text = value.strip()
    if not text:
        raise InvalidInputError("must not be empty", field=field)
    if len(text) > max_length:
        raise InvalidInputError(f"must be at most {max_length} characters", field=field)
    if chinese and _HAN_CHARACTER.search(text) is None:
        raise InvalidInputError("must be written in Chinese", field=field)
    return text


def _amount(field: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError("must be a whole number of fen, 0 or more", field=field)
    return value


@dataclass(frozen=True)
class NewDemand:
    """A buyer's demand as posted, with vocabulary values already parsed at the edge."""

    title: str
    description: str
    domains: Sequence[DataDomain]
    purpose: Purpose
    budget_minor_per_unit: int | None
    unit_budgets_minor: Mapping[ChargingUnit, int]
    delivery_forms: Sequence[DeliveryForm]
    grade_clearance: Grade
    deadline: date
    visibility: Visibility


def _build(caller: Principal, demand_id: UUID, new: NewDemand, today: date) -> Demand:
    title = _text("title", new.title, max_length=TITLE_MAX_LENGTH, chinese=True)
    description = _text("description", new.description, max_length=DESCRIPTION_MAX_LENGTH)
    if new.budget_minor_per_unit is not None:
        _amount("budget_minor_per_unit", new.budget_minor_per_unit)
    for unit, amount in new.unit_budgets_minor.items():
        _amount(f"unit_budgets_minor.{unit.value}", amount)
    if new.deadline < today:
        raise InvalidInputError(f"{new.deadline} is in the past", field="deadline")
    if new.deadline > today + MAX_DEADLINE:
        raise InvalidInputError("must be within a year from today", field="deadline")
    if len(set(new.domains)) != len(new.domains):
        raise InvalidInputError("names a domain twice", field="domains")
    return Demand(
        demand_id=str(demand_id),
        buyer_org_id=str(caller.organisation_id),
        title=title,
        description=description,
        domains=frozenset(new.domains),
        purpose=new.purpose,
        budget_minor_per_unit=new.budget_minor_per_unit,
        unit_budgets_minor=dict(new.unit_budgets_minor),
        delivery_forms=frozenset(new.delivery_forms),
        grade_clearance=new.grade_clearance,
        deadline=new.deadline,
    )


class LedgerRecords:
    """Ledger records of one use case, appended together as its last step: the append takes
    the log's head lock, which other appenders then wait on until the commit."""

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self._records: list[tuple[str, str, dict[str, JSONValue]]] = []

    def add(self, kind: str, subject: str, payload: dict[str, JSONValue]) -> None:
        self._records.append((kind, subject, payload))

    async def append(self) -> None:
        for kind, subject, payload in self._records:
            await append_record(kind, actor=self.actor, subject=subject, payload=payload)


def demand_payload(record: DemandRecord) -> dict[str, JSONValue]:
    return {
        "demand_id": str(record.id),
        "buyer_org_id": str(record.buyer_org_id),
        "state": record.state.value,
        "close_reason": None if record.close_reason is None else record.close_reason.value,
    }


def demand_record(
    ledger: LedgerRecords,
    kind: str,
    record: DemandRecord,
    extra: Mapping[str, JSONValue] | None = None,
) -> None:
    payload = demand_payload(record)
    payload.update(extra or {})
    ledger.add(kind, f"demand:{record.id}", payload)


def posted_terms(record: DemandRecord) -> dict[str, JSONValue]:
    """What the posting leaf logs of a demand beyond its state: its terms as posted."""
    demand = record.demand
    return {
        "domains": sorted(domain.value for domain in demand.domains),
        "purpose": demand.purpose.value,
        "budget_minor_per_unit": demand.budget_minor_per_unit,
        "unit_budgets_minor": {
            unit.value: amount for unit, amount in demand.unit_budgets_minor.items()
        },
        "delivery_forms": sorted(form.value for form in demand.delivery_forms),
        "grade_clearance": demand.grade_clearance.value,
        "deadline": demand.deadline.isoformat(),
        "visibility": record.visibility.value,
    }


async def _reload(demand_id: UUID) -> DemandRecord:
    record = await store.get_demand(demand_id)
    if record is None:  # pragma: no cover - read back inside the writing transaction
        raise RuntimeError("the demand vanished")
    return record


async def post(caller: Principal, new: NewDemand, *, today: date) -> DemandRecord:
    """Post a buyer's demand; it opens at once and is matched by the next refresh."""
    if caller.role is not Role.BUYER:
        raise PermissionDeniedError("only buyers post demands", field="role")
    demand_id = uuid4()
    demand = _build(caller, demand_id, new, today)
    # Matching trusts the demand's clearance, so it may claim no more than the register grants.
    held = await clearances.clearance_in_force(caller.organisation_id, today)
    if not buyer_may_receive(demand.grade_clearance, held):
        raise InvalidInputError(
            f"the buyer is cleared for {held.value} data only (clearances are granted by "
            "exchange staff)", field="grade_clearance")
    async with transaction():
        await store.insert_demand(demand_id, demand, new.visibility, _now())
        record = await _reload(demand_id)
        await shared_outbox.queue_demand_version(record, record.created_at)
        ledger = LedgerRecords(actor(caller))
        demand_record(ledger, DEMAND_POSTED, record, posted_terms(record))
        await ledger.append()
    return record


async def _engaged(operator_id: UUID, demand_id: UUID) -> bool:
    offers = await store.list_offers(demand_id=demand_id, operator_org_id=operator_id)
    questions = await store.list_questions(demand_id, operator_org_id=operator_id)
    return bool(offers or questions)


async def _visible(caller: Principal, record: DemandRecord | None) -> DemandRecord:
    if record is None:
        raise NotFoundError("no such demand", field="demand_id")
    if caller.role in _STAFF_ROLES:
        return record
    if caller.role is Role.BUYER and record.buyer_org_id == caller.organisation_id:
        return record
    if caller.role is Role.OPERATOR and (
        record.state is DemandState.OPEN or await _engaged(caller.organisation_id, record.id)
    ):
        return record
    if (
        caller.role is Role.PEER
        and record.visibility is Visibility.PUBLIC_POOL
        and record.state is DemandState.OPEN
    ):
        return record
    raise NotFoundError("no such demand", field="demand_id")


async def own_demand(caller: Principal, demand_id: UUID, *, lock: bool) -> DemandRecord:
    """The caller's own demand (a buyer's); anyone else's answers as unknown."""
    record = await store.get_demand(demand_id, lock=lock)
    if record is None or record.buyer_org_id != caller.organisation_id:
        raise NotFoundError("no such demand", field="demand_id")
    return record


async def get(caller: Principal, demand_id: UUID) -> DemandRecord:
    return await _visible(caller, await store.get_demand(demand_id))


async def list_for(caller: Principal) -> list[DemandRecord]:
    """A buyer's own demands; every demand for staff and the regulator; the open public-pool
    demands for a peer exchange; the open demands for an operator."""
    if caller.role is Role.BUYER:
        return await store.list_demands(buyer_org_id=caller.organisation_id)
    if caller.role in _STAFF_ROLES:
        return await store.list_demands()
    records = await store.list_demands(states=[DemandState.OPEN])
    if caller.role is Role.PEER:
        return [r for r in records if r.visibility is Visibility.PUBLIC_POOL]
    return records


def declined_with_demand_payload(
    offer_id: UUID, demand_id: UUID, reason: str
) -> dict[str, JSONValue]:
    """The leaf of an offer declined because its demand was matched or closed."""
    return {"offer_id": str(offer_id), "demand_id": str(demand_id), "reason": reason}


async def _decline_pending(
    ledger: LedgerRecords, demand_id: UUID, reason: str, now: datetime
) -> None:
    """A demand that is no longer open declines its pending offers (their operators are told)."""
    for offer in await store.list_offers(demand_id=demand_id):
        if offer.state is not OfferState.PENDING:
            continue
        await store.decide_offer(offer.id, OfferState.DECLINED, now, decline_reason=reason)
        payload = declined_with_demand_payload(offer.id, demand_id, reason)
        await notifications.notify(
            offer.operator_org_id, "offer.declined", f"offer:{offer.id}", payload, now=now
        )
        ledger.add(OFFER_DECLINED, f"offer:{offer.id}", payload)
    await foreign_offers.decline_pending(ledger.add, demand_id, reason, now)


async def _close(
    ledger: LedgerRecords, record: DemandRecord, reason: CloseReason, now: datetime
) -> DemandRecord:
    await store.set_demand_state(record.id, DemandState.CLOSED, reason, now)
    await store.replace_matches(record.id, [], now)
    await _decline_pending(ledger, record.id, closed_decline_reason(reason), now)
    closed = await _reload(record.id)
    await shared_outbox.queue_demand_version(closed, now)
    kind = DEMAND_EXPIRED if reason is CloseReason.EXPIRED else DEMAND_CLOSED
    demand_record(ledger, kind, closed, {"from_state": record.state.value})
    return closed


async def match(ledger: LedgerRecords, record: DemandRecord, now: datetime) -> DemandRecord:
    """An offer on the open demand was accepted (one of this exchange's, or a peer's): the
    demand is matched, its other pending offers are declined and peers get the new version.
    The caller records the acceptance and ``demand.matched``."""
    await store.set_demand_state(record.id, DemandState.MATCHED, None, now)
    await _decline_pending(ledger, record.id, MATCHED_DECLINE_REASON, now)
    matched = await _reload(record.id)
    await shared_outbox.queue_demand_version(matched, now)
    return matched


async def withdraw(caller: Principal, demand_id: UUID) -> DemandRecord:
    """The buyer withdraws its open or matched demand."""
    async with transaction():
        record = await own_demand(caller, demand_id, lock=True)
        if record.state is DemandState.CLOSED:
            raise ConflictError("the demand is already closed", field="state")
        ledger = LedgerRecords(actor(caller))
        closed = await _close(ledger, record, CloseReason.WITHDRAWN, _now())
        await ledger.append()
    return closed


async def close_fulfilled(caller: Principal, demand_id: UUID) -> DemandRecord:
    """The buyer closes its matched demand as fulfilled."""
    async with transaction():
        record = await own_demand(caller, demand_id, lock=True)
        if record.state is not DemandState.MATCHED:
            raise ConflictError(
                f"only a matched demand can be fulfilled; this one is {record.state.value}",
                field="state",
            )
        ledger = LedgerRecords(actor(caller))
        closed = await _close(ledger, record, CloseReason.FULFILLED, _now())
        await ledger.append()
    return closed


async def expire_due(today: date) -> list[UUID]:
    """Close every open or matched demand whose deadline has passed (a beat job); each in its
    own transaction, so one failure does not hold back the others."""
    expired = []
    for demand_id in await store.demands_due_for_expiry(today):
        async with transaction():
            record = await store.get_demand(demand_id, lock=True)
            if record is None or record.state is DemandState.CLOSED:
                continue
            if record.demand.deadline >= today:
                continue
            now = _now()
            ledger = LedgerRecords(EXPIRY_ACTOR)
            closed = await _close(ledger, record, CloseReason.EXPIRED, now)
            await notifications.notify(
                closed.buyer_org_id,
                "demand.expired",
                f"demand:{demand_id}",
                {"demand_id": str(demand_id), "title": closed.demand.title},
                now=now,
            )
            await ledger.append()
            expired.append(demand_id)
    return expired


# --- matching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedProducts:
    record: DemandRecord
    matches: list[Match]


async def matches(
    caller: Principal, demand_id: UUID, service: MatchingService, *, k: int
) -> RankedProducts:
    """The top products for the buyer's own demand (staff and the regulator may look too)."""
    record = await store.get_demand(demand_id)
    if record is None or (
        caller.role not in _STAFF_ROLES and record.buyer_org_id != caller.organisation_id
    ):
        raise NotFoundError("no such demand", field="demand_id")
    await service.sync()
    return RankedProducts(record=record, matches=service.top_products(record, k))


async def explain(
    caller: Principal, demand_id: UUID, product_id: UUID, service: MatchingService
) -> Explanation:
    """Why a product does or does not match the buyer's demand: every filter's verdict."""
    record = await store.get_demand(demand_id)
    if record is None or (
        caller.role not in _STAFF_ROLES and record.buyer_org_id != caller.organisation_id
    ):
        raise NotFoundError("no such demand", field="demand_id")
    await service.sync()
    explanation = service.products.explain(record.demand, str(product_id))
    if explanation is None:
        raise NotFoundError("no such listed product", field="product_id")
    return explanation


@dataclass(frozen=True)
class DemandForOperator:
    record: DemandRecord
    match: Match


async def for_operator(
    caller: Principal, service: MatchingService, *, k: int
) -> list[DemandForOperator]:
    """The open demands the operator's listed products could serve, best first."""
    await service.sync()
    today = service.today()
    products = service.operator_products(caller.organisation_id)
    found = []
    for match in service.demands.open_demands_for(products, k):
        record = service.open_demand(match.demand_id)
        # Past its deadline but not yet closed by the expiry job: no longer worth answering.
        if record is not None and record.demand.deadline >= today:
            found.append(DemandForOperator(record=record, match=match))
    return found


# --- questions -------------------------------------------------------------------------------


async def ask(caller: Principal, demand_id: UUID, question: str) -> QuestionRecord:
    """An operator asks the buyer about an open demand."""
    text = _text("question", question, max_length=TEXT_MAX_LENGTH)
    async with transaction():
        record = await _visible(caller, await store.get_demand(demand_id, lock=True))
        if caller.role is not Role.OPERATOR:
            raise PermissionDeniedError("only operators ask about demands", field="role")
        if record.state is not DemandState.OPEN:
            raise ConflictError("the demand is no longer open", field="demand_id")
        question_id = uuid4()
        now = _now()
        await store.insert_question(question_id, demand_id, caller.organisation_id, text, now)
        await notifications.notify(
            record.buyer_org_id,
            "demand.question",
            f"demand:{demand_id}",
            {"demand_id": str(demand_id), "question_id": str(question_id), "question": text},
            now=now,
        )
        stored = await store.get_question(question_id)
    if stored is None:  # pragma: no cover - read back inside the writing transaction
        raise RuntimeError("the question vanished")
    return stored


async def answer(
    caller: Principal, demand_id: UUID, question_id: UUID, text: str
) -> QuestionRecord:
    """The buyer answers a question about its demand, once."""
    reply = _text("answer", text, max_length=TEXT_MAX_LENGTH)
    async with transaction():
        await own_demand(caller, demand_id, lock=False)
        question = await store.get_question(question_id, lock=True)
        if question is None or question.demand_id != demand_id:
            raise NotFoundError("no such question", field="question_id")
        if question.answer is not None:
            raise ConflictError("the question is already answered", field="question_id")
        now = _now()
        await store.answer_question(question_id, reply, now)
        await notifications.notify(
            question.operator_org_id,
            "demand.answer",
            f"demand:{demand_id}",
            {"demand_id": str(demand_id), "question_id": str(question_id), "answer": reply},
            now=now,
        )
        stored = await store.get_question(question_id)
    if stored is None:  # pragma: no cover
        raise RuntimeError("the question vanished")
    return stored


async def questions(caller: Principal, demand_id: UUID) -> list[QuestionRecord]:
    """All questions for the buyer (and staff); an operator sees its own."""
    record = await get(caller, demand_id)
    if caller.role is Role.OPERATOR:
        return await store.list_questions(record.id, operator_org_id=caller.organisation_id)
    if caller.role is Role.PEER:
        raise NotFoundError("no such demand", field="demand_id")
    return await store.list_questions(record.id)


# --- offers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewOffer:
    product_id: UUID
    unit: ChargingUnit
    price_minor: int
    message: str = ""


# The price filter is about list prices; an offer is judged on its own price below.
_OFFER_FILTERS = tuple(name for name in ALL_FILTERS if name is not MatchFilter.PRICE)


def _offer_price(demand: Demand, listed_prices: Sequence[Price], offer: NewOffer) -> Price:
    _amount("price_minor", offer.price_minor)
    listed = next(
        (p for p in listed_prices if p.purpose is demand.purpose and p.unit is offer.unit), None
    )
    if listed is None:
        raise InvalidInputError(
            f"the product has no list price for {demand.purpose.value} per {offer.unit.value}",
            field="unit",
        )
    # The list price sits under the approved cap, so an offer at or below it does too.
    if offer.price_minor > listed.price_minor:
        raise InvalidInputError(
            f"above the product's list price of {listed.price_minor} fen per {offer.unit.value}",
            field="price_minor",
        )
    check_within_budget(demand, offer.unit, offer.price_minor)
    return Price(demand.purpose, offer.unit, offer.price_minor, listed.currency)


def offer_payload(offer: OfferRecord) -> dict[str, JSONValue]:
    return {
        "offer_id": str(offer.id),
        "demand_id": str(offer.demand_id),
        "operator_org_id": str(offer.operator_org_id),
        "product_id": str(offer.product_id),
        "purpose": offer.price.purpose.value,
        "unit": offer.price.unit.value,
        "price_minor": offer.price.price_minor,
        "currency": offer.price.currency,
        "state": offer.state.value,
        "order_id": None if offer.order_id is None else str(offer.order_id),
    }


def offer_message(caller: Principal, offer: NewOffer) -> str:
    """The offer's message, once the caller is known to be an operator who may offer."""
    if caller.role is not Role.OPERATOR:
        raise PermissionDeniedError("only operators make offers", field="role")
    message = offer.message.strip()
    if len(message) > TEXT_MAX_LENGTH:
        raise InvalidInputError(f"must be at most {TEXT_MAX_LENGTH} characters", field="message")
    return message


async def checked_offer(
    caller: Principal, demand: Demand, offer: NewOffer, today: date
) -> tuple[ListedProduct, Price]:
    """The operator's own listed product, passing every hard filter but price for the demand,
    and the offer's price within the product's list price (so its cap) and the budget."""
    change = await store.product_for_matching(offer.product_id, today)
    if change is None or change.product.operator_id != str(caller.organisation_id):
        raise NotFoundError("no such product", field="product_id")
    failed = [
        exclusion
        for exclusion in exclusions(demand, change.product)
        if exclusion.filter in _OFFER_FILTERS
    ]
    if failed:
        raise InvalidInputError(
            "; ".join(exclusion.reason for exclusion in failed), field="product_id"
        )
    return change.product, _offer_price(demand, change.product.prices, offer)


async def _reload_offer(offer_id: UUID) -> OfferRecord:
    offer = await store.get_offer(offer_id)
    if offer is None:  # pragma: no cover - read back inside the writing transaction
        raise RuntimeError("the offer vanished")
    return offer


async def make_offer(
    caller: Principal, demand_id: UUID, offer: NewOffer, *, today: date
) -> OfferRecord:
    """An operator offers one of its listed products for an open demand, at a price within the
    product's list price (so within its cap) and within the buyer's budget."""
    message = offer_message(caller, offer)
    async with transaction():
        record = await _visible(caller, await store.get_demand(demand_id, lock=True))
        if record.state is not DemandState.OPEN or record.demand.deadline < today:
            raise ConflictError("the demand is no longer open", field="demand_id")
        _product, price = await checked_offer(caller, record.demand, offer, today)
        if await store.pending_offer_exists(demand_id, offer.product_id):
            raise ConflictError(
                "this product already has a pending offer for the demand", field="product_id"
            )
        offer_id = uuid4()
        now = _now()
        await store.insert_offer(
            offer_id, demand_id, caller.organisation_id, offer.product_id, price, message, now
        )
        stored = await _reload_offer(offer_id)
        await notifications.notify(
            record.buyer_org_id,
            "offer.made",
            f"offer:{offer_id}",
            {
                "offer_id": str(offer_id),
                "demand_id": str(demand_id),
                "product_id": str(offer.product_id),
                "unit": price.unit.value,
                "price_minor": price.price_minor,
            },
            now=now,
        )
        await append_record(
            OFFER_MADE,
            actor=actor(caller),
            subject=f"offer:{offer_id}",
            payload=offer_payload(stored),
        )
    return stored


async def offers(caller: Principal, demand_id: UUID) -> list[OfferRecord]:
    """The offers on a demand: all of them for its buyer and staff, its own for an operator."""
    record = await get(caller, demand_id)
    if caller.role is Role.OPERATOR:
        return await store.list_offers(demand_id=record.id, operator_org_id=caller.organisation_id)
    if caller.role is Role.PEER:
        raise NotFoundError("no such demand", field="demand_id")
    return await store.list_offers(demand_id=record.id)


async def operator_offers(caller: Principal) -> list[OfferRecord]:
    return await store.list_offers(operator_org_id=caller.organisation_id)


async def _buyers_offer(
    caller: Principal, offer_id: UUID, demand_id: UUID | None = None
) -> tuple[OfferRecord, DemandRecord]:
    """The caller's offer and its demand, both locked: the demand first, then the offer, in
    every use case, so two decisions on offers of one demand queue instead of deadlocking."""
    unlocked = await store.get_offer(offer_id)
    if unlocked is None or demand_id not in (None, unlocked.demand_id):
        raise NotFoundError("no such offer", field="offer_id")
    record = await store.get_demand(unlocked.demand_id, lock=True)
    if record is None or record.buyer_org_id != caller.organisation_id:
        raise NotFoundError("no such offer", field="offer_id")
    offer = await store.get_offer(offer_id, lock=True)
    if offer is None:  # pragma: no cover - offers are never deleted
        raise NotFoundError("no such offer", field="offer_id")
    return offer, record


async def _buyers_pending_offer(
    caller: Principal, offer_id: UUID
) -> tuple[OfferRecord, DemandRecord]:
    offer, record = await _buyers_offer(caller, offer_id)
    if offer.state is not OfferState.PENDING:
        raise ConflictError(f"the offer is already {offer.state.value}", field="offer_id")
    return offer, record


async def accept_offer(caller: Principal, offer_id: UUID, *, today: date) -> OfferRecord:
    """The buyer accepts an offer: the demand is matched. The order is made by the orders use
    case, which sets the offer's ``order_id``; until then it stays empty."""
    async with transaction():
        offer, record = await _buyers_pending_offer(caller, offer_id)
        if record.state is not DemandState.OPEN:
            raise ConflictError(
                f"the demand is {record.state.value}, not open", field="demand_id"
            )
        change = await store.product_for_matching(offer.product_id, today)
        if change is None or not (change.listed and change.product.operator_authorized):
            raise ConflictError("the offered product is no longer listed", field="product_id")
        now = _now()
        await store.decide_offer(offer_id, OfferState.ACCEPTED, now)
        ledger = LedgerRecords(actor(caller))
        matched = await match(ledger, record, now)
        accepted = await _reload_offer(offer_id)
        await notifications.notify(
            offer.operator_org_id,
            "offer.accepted",
            f"offer:{offer_id}",
            {"offer_id": str(offer_id), "demand_id": str(record.id), "order_id": None},
            now=now,
        )
        ledger.add(OFFER_ACCEPTED, f"offer:{offer_id}", offer_payload(accepted))
        demand_record(ledger, DEMAND_MATCHED, matched, {"offer_id": str(offer_id)})
        await ledger.append()
    return accepted


async def decline_offer(caller: Principal, offer_id: UUID) -> OfferRecord:
    async with transaction():
        offer, record = await _buyers_pending_offer(caller, offer_id)
        now = _now()
        await store.decide_offer(
            offer_id, OfferState.DECLINED, now, decline_reason=BUYER_DECLINE_REASON
        )
        declined = await _reload_offer(offer_id)
        await notifications.notify(
            offer.operator_org_id,
            "offer.declined",
            f"offer:{offer_id}",
            {"offer_id": str(offer_id), "demand_id": str(record.id), "reason": "declined by buyer"},
            now=now,
        )
        await append_record(
            OFFER_DECLINED,
            actor=actor(caller),
            subject=f"offer:{offer_id}",
            payload=offer_payload(declined),
        )
    return declined


# --- offer → order ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferOrderTerms:
    """What the buyer adds to an offer to order it; product, purpose, unit and price come from
    the offer."""

    quantity: int
    term_start: date
    term_end: date
    terms_accepted: bool
    payment_method: str = orders.PaymentMethod.BANK_TRANSFER.value


@dataclass(frozen=True)
class OrderedOffer:
    offer: OfferRecord
    placed: orders.PlacedOrder


def _offer_order_request(offer: OfferRecord, terms: OfferOrderTerms) -> orders.OrderRequest:
    return orders.OrderRequest(
        product_id=offer.product_id, purpose=offer.price.purpose.value,
        unit=offer.price.unit.value, quantity=terms.quantity, term_start=terms.term_start,
        term_end=terms.term_end, terms_accepted=terms.terms_accepted,
        payment_method=terms.payment_method, unit_price_minor=offer.price.price_minor)


def _offer_order_fingerprint(offer_id: UUID, request: orders.OrderRequest) -> str:
    # The offer is part of what was asked: one key cannot order two offers, nor be replayed as
    # a plain POST /orders (whose fingerprint has no offer in it).
    return hashlib.sha256(canonical_json(
        {"offer_id": str(offer_id), "order": request.fingerprint()})).hexdigest()


def _orderable(offer: OfferRecord, record: DemandRecord) -> None:
    """A pending offer on an open demand, or an accepted one not yet ordered on a matched
    demand; anything else is a conflict naming the offer (or the demand)."""
    if offer.order_id is not None:
        raise ConflictError(f"offer {offer.id} was already ordered as order {offer.order_id}",
                            field="offer_id")
    if offer.state is OfferState.DECLINED:
        raise ConflictError(f"offer {offer.id} is declined", field="offer_id")
    wanted = DemandState.OPEN if offer.state is OfferState.PENDING else DemandState.MATCHED
    if record.state is not wanted:
        raise ConflictError(f"the demand is {record.state.value}", field="demand_id")


async def order_offer(
    caller: Principal, demand_id: UUID, offer_id: UUID, terms: OfferOrderTerms, *,
    idempotency_key: str, config: orders.OrderConfig, now: datetime,
) -> OrderedOffer:
    """The buyer orders an offer: one transaction places the order through the orders use case
    at the offer's price (checked again against the cap in force and reserved under the
    operator's ceiling, like any order), records its id on the offer, accepts a pending offer
    and matches the demand; the ledger leaves come last. The payment starts after the commit,
    as ``orders.place`` does. The same key and body answer the same order."""
    key = orders.checked_idempotency_key(idempotency_key)
    offer: OfferRecord | None = None
    fingerprint: str | None = None
    try:
        async with transaction(), connection():
            offer, record = await _buyers_offer(caller, offer_id, demand_id)
            request = _offer_order_request(offer, terms)
            fingerprint = _offer_order_fingerprint(offer_id, request)
            _orderable(offer, record)
            order = await orders.insert_order(caller, request, key, fingerprint, config, now=now)
            stored = await _record_offer_order(caller, offer, record, order.id, now)
    except orders.PLACING_REFUSALS as refusal:
        if offer is None or fingerprint is None:
            raise  # refused before the request was known: not a question of the key
        # A replay (the offer is ordered by now) answers with the key's order and the offer as
        # read, which the rolled-back transaction did not change.
        replayed = await orders.order_placed_before(caller, key, fingerprint, refusal)
        placed = await orders.after_placement(replayed, created=False, config=config, now=now)
        return OrderedOffer(offer=offer, placed=placed)
    placed = await orders.after_placement(order, created=True, config=config, now=now)
    return OrderedOffer(offer=stored, placed=placed)


async def _record_offer_order(
    caller: Principal, offer: OfferRecord, record: DemandRecord, order_id: UUID, now: datetime
) -> OfferRecord:
    ledger = LedgerRecords(actor(caller))
    if offer.state is OfferState.PENDING:
        await store.decide_offer(offer.id, OfferState.ACCEPTED, now)
        await match(ledger, record, now)
    await OfferRow.update({OfferRow.order_id: order_id}).where(OfferRow.id == offer.id).run()
    ordered = await _reload_offer(offer.id)
    await notifications.notify(
        offer.operator_org_id, "offer.ordered", f"offer:{offer.id}",
        {"offer_id": str(offer.id), "demand_id": str(record.id), "order_id": str(order_id)},
        now=now)
    if offer.state is OfferState.PENDING:
        ledger.add(OFFER_ACCEPTED, f"offer:{offer.id}", offer_payload(ordered))
        demand_record(ledger, DEMAND_MATCHED, await _reload(record.id),
                       {"offer_id": str(offer.id)})
    ledger.add(OFFER_ORDERED, f"offer:{offer.id}", offer_payload(ordered))
    await ledger.append()
    return ordered
