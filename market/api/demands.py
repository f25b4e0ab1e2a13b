"""Demand over HTTP: buyers post and follow their demands, see matching products and answer
offers; operators find the demands their products could serve, ask questions and offer.
Another organisation's demand answers 404."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, JSONBody

from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose
from listings.product import Price
from market.accounts.model import Role
from market.api.access import AUTHENTICATED, Caller, provide_principal, roles
from market.api.listings_common import Labelled, labelled, vocabulary
from market.api.orders import Config, IdempotencyKey, OrderOut, TermIn, order_out
from market.errors import InvalidInputError
from market.trading import demands as service
from market.trading import foreign_offer_decisions, matching_service, orders
from market.trading.matching import Explanation, Match
from market.trading.shared_store import ForeignOfferRecord
from market.trading.store import (
    CloseReason,
    DemandRecord,
    OfferRecord,
    QuestionRecord,
    Visibility,
    product_names,
)

PRINCIPAL = {"principal": Provide(provide_principal, sync_to_thread=False)}


TopK = Annotated[int, msgspec.Meta(ge=1, le=50)]


class DemandCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    description: str
    domains: list[str]
    purpose: str
    delivery_forms: list[str]
    grade_clearance: str
    deadline: date
    visibility: str
    budget_minor_per_unit: int | None = None
    unit_budgets_minor: dict[str, int] = msgspec.field(default_factory=dict)


class CloseIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


class QuestionIn(msgspec.Struct, forbid_unknown_fields=True):
    question: str


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    answer: str


class OfferIn(msgspec.Struct, forbid_unknown_fields=True):
    product_id: UUID
    unit: str
    price_minor: int
    message: str = ""


class OfferOrderIn(msgspec.Struct, forbid_unknown_fields=True):
    """Ordering an offer: product, purpose, unit and unit price are the offer's."""

    quantity: int
    term: TermIn
    terms_accepted: bool
    payment_method: str = orders.PaymentMethod.BANK_TRANSFER.value


class UnitBudgetOut(msgspec.Struct):
    unit: Labelled
    budget_minor: int


class DemandOut(msgspec.Struct):
    id: UUID
    buyer_org_id: UUID
    title: str
    description: str
    domains: list[Labelled]
    purpose: Labelled
    budget_minor_per_unit: int | None
    unit_budgets: list[UnitBudgetOut]
    currency: str
    delivery_forms: list[Labelled]
    grade_clearance: Labelled
    deadline: date
    visibility: Labelled
    state: Labelled
    close_reason: Labelled | None
    created_at: datetime
    updated_at: datetime


class PriceOut(msgspec.Struct):
    purpose: Labelled
    unit: Labelled
    price_minor: int
    currency: str


class ProductMatchOut(msgspec.Struct):
    """A product for a demand, with why: the terms it shares with the demand, the terms it
    shares with the expanded query, the hard filters it passed and whether it covers the area
    the demand asks for."""

    rank: int
    product_id: UUID
    title: str
    operator_name: str
    score: float
    matched_terms: list[str]
    feedback_terms: list[str]
    filters_passed: list[Labelled]
    area_fit: Labelled
    price: PriceOut


class DemandMatchesOut(msgspec.Struct):
    demand: DemandOut
    matches: list[ProductMatchOut]


class ExclusionOut(msgspec.Struct):
    filter: Labelled
    reason: str


class ExplanationOut(msgspec.Struct):
    demand_id: UUID
    product_id: UUID
    is_match: bool
    score: float
    matched_terms: list[str]
    filters_passed: list[Labelled]
    exclusions: list[ExclusionOut]
    area_fit: Labelled


class DemandForMeOut(msgspec.Struct):
    """An open demand one of the operator's products could serve, with the product and why."""

    rank: int
    demand: DemandOut
    product_id: UUID
    score: float
    matched_terms: list[str]
    feedback_terms: list[str]
    filters_passed: list[Labelled]
    area_fit: Labelled
    price: PriceOut


class QuestionOut(msgspec.Struct):
    id: UUID
    demand_id: UUID
    operator_org_id: UUID
    question: str
    answer: str | None
    asked_at: datetime
    answered_at: datetime | None


class OfferingExchangeOut(msgspec.Struct):
    name: str
    origin: str


class OfferOut(msgspec.Struct):
    id: UUID
    demand_id: UUID
    operator_org_id: UUID
    product_id: UUID
    price: PriceOut
    message: str
    state: Labelled
    # Null until the orders use case turns the accepted offer into an order.
    order_id: UUID | None
    created_at: datetime
    decided_at: datetime | None
    # Set for a peer exchange's offer: its product and operator are that exchange's, and the
    # buyer decides on it at /demands/{demand_id}/foreign-offers/{id}.
    exchange: OfferingExchangeOut | None = None


class OfferOrderOut(msgspec.Struct):
    offer: OfferOut
    order: OrderOut


def demand_out(record: DemandRecord) -> DemandOut:
    demand = record.demand
    return DemandOut(
        id=record.id, buyer_org_id=record.buyer_org_id, title=demand.title,
        description=demand.description,
        domains=[labelled(domain) for domain in sorted(demand.domains)],
        purpose=labelled(demand.purpose), budget_minor_per_unit=demand.budget_minor_per_unit,
        unit_budgets=[UnitBudgetOut(unit=labelled(unit), budget_minor=amount)
                      for unit, amount in sorted(demand.unit_budgets_minor.items())],
        currency="CNY",
        delivery_forms=[labelled(form) for form in sorted(demand.delivery_forms)],
        grade_clearance=labelled(demand.grade_clearance), deadline=demand.deadline,
        visibility=labelled(record.visibility), state=labelled(record.state),
        close_reason=None if record.close_reason is None else labelled(record.close_reason),
        created_at=record.created_at, updated_at=record.updated_at)


def price_out(price: Price) -> PriceOut:
    return PriceOut(purpose=labelled(price.purpose), unit=labelled(price.unit),
                    price_minor=price.price_minor, currency=price.currency)


def _product_match(rank: int, match: Match, names: dict[UUID, tuple[str, str]]) -> ProductMatchOut:
    title, operator_name = names.get(UUID(match.product_id), ("", ""))
    return ProductMatchOut(
        rank=rank, product_id=UUID(match.product_id), title=title, operator_name=operator_name,
        score=round(match.score, 4), matched_terms=list(match.matched_terms),
        feedback_terms=list(match.feedback_terms),
        filters_passed=[labelled(name) for name in match.filters_passed],
        area_fit=labelled(match.area_fit), price=price_out(match.price))


def _explanation(explanation: Explanation) -> ExplanationOut:
    return ExplanationOut(
        demand_id=UUID(explanation.demand_id), product_id=UUID(explanation.product_id),
        is_match=explanation.is_match, score=round(explanation.score, 4),
        matched_terms=list(explanation.matched_terms),
        filters_passed=[labelled(name) for name in explanation.filters_passed],
        exclusions=[ExclusionOut(filter=labelled(item.filter), reason=item.reason)
                    for item in explanation.exclusions],
        area_fit=labelled(explanation.area_fit))


def question_out(record: QuestionRecord) -> QuestionOut:
    return QuestionOut(id=record.id, demand_id=record.demand_id,
                       operator_org_id=record.operator_org_id, question=record.question,
                       answer=record.answer, asked_at=record.asked_at,
                       answered_at=record.answered_at)


def offer_out(record: OfferRecord) -> OfferOut:
    return OfferOut(id=record.id, demand_id=record.demand_id,
                    operator_org_id=record.operator_org_id, product_id=record.product_id,
                    price=price_out(record.price), message=record.message,
                    state=labelled(record.state), order_id=record.order_id,
                    created_at=record.created_at, decided_at=record.decided_at)


def foreign_offer_as_offer(record: ForeignOfferRecord) -> OfferOut:
    return OfferOut(id=record.id, demand_id=record.demand_id,
                    operator_org_id=record.operator_id, product_id=record.product_id,
                    price=price_out(record.price), message=record.message,
                    state=labelled(record.state), order_id=None,
                    created_at=record.received_at, decided_at=record.decided_at,
                    exchange=OfferingExchangeOut(name=record.exchange_name,
                                                 origin=record.peer_origin))


def _new_demand(data: DemandCreate) -> service.NewDemand:
    if not data.domains:
        raise InvalidInputError("name at least one domain", field="domains")
    if not data.delivery_forms:
        raise InvalidInputError("name at least one delivery form", field="delivery_forms")
    unit_budgets = {vocabulary(ChargingUnit, unit, f"unit_budgets_minor.{unit}"): amount
                    for unit, amount in data.unit_budgets_minor.items()}
    if data.budget_minor_per_unit is None and not unit_budgets:
        raise InvalidInputError("give a budget per unit, or for named units",
                                field="budget_minor_per_unit")
    return service.NewDemand(
        title=data.title, description=data.description,
        domains=[vocabulary(DataDomain, value, f"domains[{index}]")
                 for index, value in enumerate(data.domains)],
        purpose=vocabulary(Purpose, data.purpose, "purpose"),
        budget_minor_per_unit=data.budget_minor_per_unit,
        unit_budgets_minor=unit_budgets,
        delivery_forms=[vocabulary(DeliveryForm, value, f"delivery_forms[{index}]")
                        for index, value in enumerate(data.delivery_forms)],
        grade_clearance=vocabulary(Grade, data.grade_clearance, "grade_clearance"),
        deadline=data.deadline,
        visibility=vocabulary(Visibility, data.visibility, "visibility"))


class DemandController(Controller):
    path = "/demands"
    tags = ["demand"]
    dependencies = PRINCIPAL
    opt = AUTHENTICATED

    @post("/", opt=roles(Role.BUYER), status_code=201,
          summary="Post a demand (buyer): what data, for which purpose, budget, delivery, deadline")
    async def post_demand(self, principal: Caller, data: JSONBody[DemandCreate]) -> DemandOut:
        matching = matching_service.current()
        new = _new_demand(data)
        return demand_out(await service.post(principal, new, today=matching.today()))

    @get("/", summary="Demands the caller may see: a buyer's own, the open ones for operators, "
                      "the open public-pool ones for peers, all for staff and the regulator")
    async def list_demands(self, principal: Caller) -> list[DemandOut]:
        return [demand_out(record) for record in await service.list_for(principal)]

    @get("/for-me", opt=roles(Role.OPERATOR),
         summary="Open demands the operator's listed products could serve, best first, each with "
                 "its best product and the explanation")
    async def demands_for_me(self, principal: Caller, k: FromQuery[TopK] = 10,
                             ) -> list[DemandForMeOut]:
        found = await service.for_operator(principal, matching_service.current(), k=k)
        return [DemandForMeOut(
            rank=rank, demand=demand_out(item.record), product_id=UUID(item.match.product_id),
            score=round(item.match.score, 4), matched_terms=list(item.match.matched_terms),
            feedback_terms=list(item.match.feedback_terms),
            filters_passed=[labelled(name) for name in item.match.filters_passed],
            area_fit=labelled(item.match.area_fit), price=price_out(item.match.price))
            for rank, item in enumerate(found, start=1)]

    @get("/{demand_id:uuid}", summary="One demand")
    async def get_demand(self, principal: Caller, demand_id: FromPath[UUID]) -> DemandOut:
        return demand_out(await service.get(principal, demand_id))

    @get("/{demand_id:uuid}/matches", opt=roles(Role.BUYER, Role.STAFF, Role.REGULATOR),
         summary="The top listed products for the buyer's demand, with matched terms and the "
                 "filters passed")
    async def demand_matches(self, principal: Caller, demand_id: FromPath[UUID],
                             k: FromQuery[TopK] = 10) -> DemandMatchesOut:
        ranked = await service.matches(principal, demand_id, matching_service.current(), k=k)
        names = await product_names([UUID(match.product_id) for match in ranked.matches])
        return DemandMatchesOut(
            demand=demand_out(ranked.record),
            matches=[_product_match(rank, match, names)
                     for rank, match in enumerate(ranked.matches, start=1)])

    @get("/{demand_id:uuid}/matches/{product_id:uuid}",
         opt=roles(Role.BUYER, Role.STAFF, Role.REGULATOR),
         summary="Why one listed product does or does not match the demand: every filter")
    async def explain_match(self, principal: Caller, demand_id: FromPath[UUID],
                            product_id: FromPath[UUID]) -> ExplanationOut:
        return _explanation(await service.explain(principal, demand_id, product_id,
                                                  matching_service.current()))

    @post("/{demand_id:uuid}/withdraw", opt=roles(Role.BUYER), status_code=200,
          summary="Withdraw the buyer's demand; its pending offers are declined")
    async def withdraw_demand(self, principal: Caller, demand_id: FromPath[UUID]) -> DemandOut:
        return demand_out(await service.withdraw(principal, demand_id))

    @post("/{demand_id:uuid}/close", opt=roles(Role.BUYER), status_code=200,
          summary="Close the buyer's matched demand as fulfilled")
    async def close_demand(self, principal: Caller, demand_id: FromPath[UUID],
                           data: JSONBody[CloseIn]) -> DemandOut:
        reason = vocabulary(CloseReason, data.reason, "reason")
        if reason is CloseReason.WITHDRAWN:
            return demand_out(await service.withdraw(principal, demand_id))
        if reason is not CloseReason.FULFILLED:
            raise InvalidInputError("a buyer closes a demand as fulfilled or withdrawn; "
                                    "expiry is the exchange's", field="reason")
        return demand_out(await service.close_fulfilled(principal, demand_id))

    @get("/{demand_id:uuid}/questions", opt=roles(Role.BUYER, Role.OPERATOR, Role.STAFF,
                                                   Role.REGULATOR),
         summary="Questions about a demand: all for its buyer, an operator's own for it")
    async def list_questions(self, principal: Caller,
                             demand_id: FromPath[UUID]) -> list[QuestionOut]:
        return [question_out(r) for r in await service.questions(principal, demand_id)]

    @post("/{demand_id:uuid}/questions", opt=roles(Role.OPERATOR), status_code=201,
          summary="Ask the buyer about an open demand (operator)")
    async def ask_question(self, principal: Caller, demand_id: FromPath[UUID],
                           data: JSONBody[QuestionIn]) -> QuestionOut:
        return question_out(await service.ask(principal, demand_id, data.question))

    @post("/{demand_id:uuid}/questions/{question_id:uuid}/answer", opt=roles(Role.BUYER),
          status_code=200, summary="Answer a question about the buyer's demand")
    async def answer_question(self, principal: Caller, demand_id: FromPath[UUID],
                              question_id: FromPath[UUID],
                              data: JSONBody[AnswerIn]) -> QuestionOut:
        return question_out(await service.answer(principal, demand_id, question_id, data.answer))

    @get("/{demand_id:uuid}/offers", opt=roles(Role.BUYER, Role.OPERATOR, Role.STAFF,
                                                Role.REGULATOR),
         summary="Offers on a demand: all for its buyer (peer exchanges' offers too, each "
                 "marked with its exchange), an operator's own for it")
    async def list_offers(self, principal: Caller, demand_id: FromPath[UUID]) -> list[OfferOut]:
        local = [offer_out(r) for r in await service.offers(principal, demand_id)]
        peers = await foreign_offer_decisions.list_for(principal, demand_id)
        return local + [foreign_offer_as_offer(r) for r in peers]

    @post("/{demand_id:uuid}/offers", opt=roles(Role.OPERATOR), status_code=201,
          summary="Offer one of the operator's listed products for the demand, at a price within "
                  "its list price and the buyer's budget")
    async def make_offer(self, principal: Caller, demand_id: FromPath[UUID],
                         data: JSONBody[OfferIn]) -> OfferOut:
        offer = service.NewOffer(product_id=data.product_id,
                                 unit=vocabulary(ChargingUnit, data.unit, "unit"),
                                 price_minor=data.price_minor, message=data.message)
        today = matching_service.current().today()
        return offer_out(await service.make_offer(principal, demand_id, offer, today=today))

    @post("/{demand_id:uuid}/offers/{offer_id:uuid}/order", opt=roles(Role.BUYER),
          status_code=201,
          summary="Order an offer (buyer) at the offer's price; the Idempotency-Key header is "
                  "required. The offer records the order, a pending offer is accepted and "
                  "the demand matched, in one transaction")
    async def order_offer(self, principal: Caller, demand_id: FromPath[UUID],
                          offer_id: FromPath[UUID], *, order_config: Config,
                          data: JSONBody[OfferOrderIn],
                          idempotency_key: IdempotencyKey = None) -> Response[OfferOrderOut]:
        if idempotency_key is None:
            raise InvalidInputError("the Idempotency-Key header is required",
                                    field="Idempotency-Key")
        terms = service.OfferOrderTerms(
            quantity=data.quantity, term_start=data.term.start, term_end=data.term.end,
            terms_accepted=data.terms_accepted, payment_method=data.payment_method)
        ordered = await service.order_offer(
            principal, demand_id, offer_id, terms, idempotency_key=idempotency_key,
            config=order_config, now=datetime.now(UTC))
        # A replay answers exactly as the first request did.
        return Response(OfferOrderOut(
            offer=offer_out(ordered.offer),
            order=await order_out(ordered.placed.order, ordered.placed.client_secret)),
            status_code=201)


class OfferController(Controller):
    path = "/offers"
    tags = ["demand"]
    dependencies = PRINCIPAL
    opt = roles(Role.BUYER)

    @get("/", opt=roles(Role.OPERATOR), summary="The operator's own offers")
    async def list_my_offers(self, principal: Caller) -> list[OfferOut]:
        return [offer_out(r) for r in await service.operator_offers(principal)]

    @post("/{offer_id:uuid}/accept", status_code=200,
          summary="Accept an offer (buyer): the demand is matched; the order is made by the "
                  "orders use case, so order_id stays null until then")
    async def accept_offer(self, principal: Caller, offer_id: FromPath[UUID]) -> OfferOut:
        today = matching_service.current().today()
        return offer_out(await service.accept_offer(principal, offer_id, today=today))

    @post("/{offer_id:uuid}/decline", status_code=200, summary="Decline an offer (buyer)")
    async def decline_offer(self, principal: Caller, offer_id: FromPath[UUID]) -> OfferOut:
        return offer_out(await service.decline_offer(principal, offer_id))
