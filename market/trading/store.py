"""Trading's SQL for demands, questions, offers and stored matches: rows in, records out.

Every function runs on the caller's transaction when there is one (Piccolo binds queries to the
current transaction). Listings' tables are read here only to learn what matching needs of a
product (``listed_products_changed_since``); they are written only by the listings package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose, Vocabulary
from listings.product import Price
from market.trading.matching import Demand, ListedProduct, Match
from market.trading.tables import DemandRow

Row = dict[str, Any]
V = TypeVar("V", bound=Vocabulary)


class DemandState(Vocabulary):
    OPEN = "open", "征集中"
    MATCHED = "matched", "已对接"
    CLOSED = "closed", "已关闭"


class CloseReason(Vocabulary):
    FULFILLED = "fulfilled", "需求已满足"
    EXPIRED = "expired", "已过截止日期"
    WITHDRAWN = "withdrawn", "需求方撤回"


class Visibility(Vocabulary):
    # 公共需求池: shared with peer exchanges (一地提出,全国响应); otherwise this exchange only.
    PUBLIC_POOL = "public_pool", "公共需求池"
    EXCHANGE = "exchange", "仅本交易所"


class OfferState(Vocabulary):
    PENDING = "pending", "待需求方答复"
    ACCEPTED = "accepted", "需求方已接受"
    DECLINED = "declined", "需求方已拒绝"


def _of(vocabulary: type[V], value: object) -> V:
    return vocabulary.from_wire(value, f"stored {vocabulary.__name__}")


async def _rows(sql: str, *args: object) -> list[Row]:
    result = await DemandRow.raw(sql, *args).run()
    return [dict(row) for row in result]


async def _one(sql: str, *args: object) -> Row | None:
    rows = await _rows(sql, *args)
    return rows[0] if rows else None


_LOCK = {True: " FOR UPDATE", False: ""}


# --- demands ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemandRecord:
    id: UUID
    demand: Demand
    visibility: Visibility
    state: DemandState
    close_reason: CloseReason | None
    created_at: datetime
    updated_at: datetime

    @property
    def buyer_org_id(self) -> UUID:
        return UUID(self.demand.buyer_org_id)


def _unit_budgets(raw: object) -> dict[ChargingUnit, int]:
    items = json.loads(raw) if isinstance(raw, str | bytes) else raw
    if not isinstance(items, dict):
        raise TypeError("stored unit budgets must be a JSON object")
    return {_of(ChargingUnit, unit): int(amount) for unit, amount in items.items()}


def _demand(row: Mapping[str, Any]) -> DemandRecord:
    demand = Demand(
        demand_id=str(row["id"]),
        buyer_org_id=str(row["buyer_org_id"]),
        title=row["title"],
        description=row["description"],
        domains=frozenset(_of(DataDomain, value) for value in row["domains"]),
        purpose=_of(Purpose, row["purpose"]),
        budget_minor_per_unit=row["budget_minor_per_unit"],
        unit_budgets_minor=_unit_budgets(row["unit_budgets"]),
        delivery_forms=frozenset(_of(DeliveryForm, value) for value in row["delivery_forms"]),
        grade_clearance=_of(Grade, row["grade_clearance"]),
        deadline=row["deadline"],
    )
    reason = row["close_reason"]
    return DemandRecord(
        id=row["id"],
        demand=demand,
        visibility=_of(Visibility, row["visibility"]),
        state=_of(DemandState, row["state"]),
        close_reason=None if reason is None else _of(CloseReason, reason),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_DEMAND_COLUMNS = (
    "id, buyer_org_id, title, description, domains, purpose, budget_minor_per_unit, "
    "unit_budgets::text AS unit_budgets, delivery_forms, grade_clearance, deadline, visibility, "
    "state, close_reason, created_at, updated_at"
)


def unit_budgets_json(budgets: Mapping[ChargingUnit, int]) -> str:
    return json.dumps({unit.value: amount for unit, amount in sorted(budgets.items())})


async def insert_demand(
    demand_id: UUID, demand: Demand, visibility: Visibility, now: datetime
) -> None:
    await _rows(
        "INSERT INTO trading_demands (id, buyer_org_id, title, description, domains, purpose, "
        "budget_minor_per_unit, unit_budgets, delivery_forms, grade_clearance, deadline, "
        "visibility, state, close_reason, created_at, updated_at) VALUES "
        "({}, {}, {}, {}, {}, {}, {}, {}::jsonb, {}, {}, {}, {}, 'open', NULL, {}, {})",
        demand_id,
        UUID(demand.buyer_org_id),
        demand.title,
        demand.description,
        sorted(domain.value for domain in demand.domains),
        demand.purpose.value,
        demand.budget_minor_per_unit,
        unit_budgets_json(demand.unit_budgets_minor),
        sorted(form.value for form in demand.delivery_forms),
        demand.grade_clearance.value,
        demand.deadline,
        visibility.value,
        now,
        now,
    )


async def get_demand(demand_id: UUID, *, lock: bool = False) -> DemandRecord | None:
    row = await _one(
        f"SELECT {_DEMAND_COLUMNS} FROM trading_demands WHERE id = {{}}"  # noqa: S608 -- constant columns
        + _LOCK[lock],
        demand_id,
    )
    return None if row is None else _demand(row)


async def list_demands(
    *, buyer_org_id: UUID | None = None, states: Sequence[DemandState] | None = None
) -> list[DemandRecord]:
    state_values = None if states is None else [state.value for state in states]
    rows = await _rows(
        f"SELECT {_DEMAND_COLUMNS} FROM trading_demands "  # noqa: S608 -- constant columns
        "WHERE ({}::uuid IS NULL OR buyer_org_id = {}) AND ({}::text[] IS NULL OR state = ANY({})) "
        "ORDER BY created_at DESC, id",
        buyer_org_id,
        buyer_org_id,
        state_values,
        state_values,
    )
    return [_demand(row) for row in rows]


async def demands_changed_since(since: datetime | None) -> list[DemandRecord]:
    rows = await _rows(
        f"SELECT {_DEMAND_COLUMNS} FROM trading_demands "  # noqa: S608 -- constant columns
        "WHERE {}::timestamptz IS NULL OR updated_at > {} ORDER BY updated_at, id",
        since,
        since,
    )
    return [_demand(row) for row in rows]


async def demands_due_for_expiry(today: date) -> list[UUID]:
    rows = await _rows(
        "SELECT id FROM trading_demands WHERE state <> 'closed' AND deadline < {} "
        "ORDER BY deadline, id",
        today,
    )
    return [row["id"] for row in rows]


async def set_demand_state(
    demand_id: UUID, state: DemandState, reason: CloseReason | None, now: datetime
) -> None:
    await _rows(
        "UPDATE trading_demands SET state = {}, close_reason = {}, updated_at = {} WHERE id = {}",
        state.value,
        None if reason is None else reason.value,
        now,
        demand_id,
    )


# --- questions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionRecord:
    id: UUID
    demand_id: UUID
    operator_org_id: UUID
    question: str
    answer: str | None
    asked_at: datetime
    answered_at: datetime | None


def _question(row: Mapping[str, Any]) -> QuestionRecord:
    return QuestionRecord(
        id=row["id"],
        demand_id=row["demand_id"],
        operator_org_id=row["operator_org_id"],
        question=row["question"],
        answer=row["answer"],
        asked_at=row["asked_at"],
        answered_at=row["answered_at"],
    )


async def insert_question(
    question_id: UUID, demand_id: UUID, operator_org_id: UUID, text: str, now: datetime
) -> None:
    await _rows(
        "INSERT INTO trading_demand_questions (id, demand_id, operator_org_id, question, "
        "asked_at) VALUES ({}, {}, {}, {}, {})",
        question_id,
        demand_id,
        operator_org_id,
        text,
        now,
    )


async def get_question(question_id: UUID, *, lock: bool = False) -> QuestionRecord | None:
    row = await _one(
        "SELECT * FROM trading_demand_questions WHERE id = {}" + _LOCK[lock],  # noqa: S608 -- a constant suffix
        question_id,
    )
    return None if row is None else _question(row)


async def list_questions(
    demand_id: UUID, *, operator_org_id: UUID | None = None
) -> list[QuestionRecord]:
    rows = await _rows(
        "SELECT * FROM trading_demand_questions WHERE demand_id = {} "
        "AND ({}::uuid IS NULL OR operator_org_id = {}) ORDER BY asked_at, id",
        demand_id,
        operator_org_id,
        operator_org_id,
    )
    return [_question(row) for row in rows]


async def answer_question(question_id: UUID, answer: str, now: datetime) -> None:
    await _rows(
        "UPDATE trading_demand_questions SET answer = {}, answered_at = {} WHERE id = {}",
        answer,
        now,
        question_id,
    )


# --- offers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferRecord:
    id: UUID
    demand_id: UUID
    operator_org_id: UUID
    product_id: UUID
    price: Price
    message: str
    state: OfferState
    order_id: UUID | None
    created_at: datetime
    decided_at: datetime | None
    # Why it was declined; None while it is not, and for offers declined before it was kept.
    decline_reason: str | None


def _offer(row: Mapping[str, Any]) -> OfferRecord:
    return OfferRecord(
        id=row["id"],
        demand_id=row["demand_id"],
        operator_org_id=row["operator_org_id"],
        product_id=row["product_id"],
        price=Price(
            purpose=_of(Purpose, row["purpose"]),
            unit=_of(ChargingUnit, row["unit"]),
            price_minor=int(row["price_minor"]),
            currency=row["currency"],
        ),
        message=row["message"],
        state=_of(OfferState, row["state"]),
        order_id=row["order_id"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        decline_reason=row["decline_reason"],
    )


async def insert_offer(  # noqa: PLR0917 -- one value per column, all required
    offer_id: UUID,
    demand_id: UUID,
    operator_org_id: UUID,
    product_id: UUID,
    price: Price,
    message: str,
    now: datetime,
) -> None:
    await _rows(
        "INSERT INTO trading_offers (id, demand_id, operator_org_id, product_id, purpose, unit, "
        "price_minor, currency, message, state, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, 'pending', {})",
        offer_id,
        demand_id,
        operator_org_id,
        product_id,
        price.purpose.value,
        price.unit.value,
        price.price_minor,
        price.currency,
        message,
        now,
    )


async def get_offer(offer_id: UUID, *, lock: bool = False) -> OfferRecord | None:
    row = await _one(
        "SELECT * FROM trading_offers WHERE id = {}" + _LOCK[lock],  # noqa: S608 -- a constant suffix
        offer_id,
    )
    return None if row is None else _offer(row)


async def pending_offer_exists(demand_id: UUID, product_id: UUID) -> bool:
    row = await _one(
        "SELECT 1 AS found FROM trading_offers WHERE demand_id = {} AND product_id = {} "
        "AND state = 'pending'",
        demand_id,
        product_id,
    )
    return row is not None


async def list_offers(
    *, demand_id: UUID | None = None, operator_org_id: UUID | None = None
) -> list[OfferRecord]:
    rows = await _rows(
        "SELECT * FROM trading_offers WHERE ({}::uuid IS NULL OR demand_id = {}) "
        "AND ({}::uuid IS NULL OR operator_org_id = {}) ORDER BY created_at, id",
        demand_id,
        demand_id,
        operator_org_id,
        operator_org_id,
    )
    return [_offer(row) for row in rows]


async def decide_offer(
    offer_id: UUID, state: OfferState, now: datetime, *, decline_reason: str | None = None
) -> None:
    await _rows(
        "UPDATE trading_offers SET state = {}, decided_at = {}, decline_reason = {} WHERE id = {}",
        state.value,
        now,
        decline_reason,
        offer_id,
    )


# --- listed products, as matching sees them --------------------------------------------------


@dataclass(frozen=True)
class ProductChange:
    """A product's matching view at ``version`` (the later of its own and its authorization's
    last change); ``listed`` is False for a draft or delisted product."""

    product: ListedProduct
    listed: bool
    version: datetime


def _prices(raw: object) -> tuple[Price, ...]:
    items = json.loads(raw) if isinstance(raw, str | bytes) else raw
    if not isinstance(items, list):
        raise TypeError("stored prices must be a JSON array")
    return tuple(
        Price(
            purpose=_of(Purpose, item["purpose"]),
            unit=_of(ChargingUnit, item["unit"]),
            price_minor=int(item["price_minor"]),
            currency=str(item["currency"]),
        )
        for item in items
    )


_PRODUCT_SQL = (
    "SELECT p.id, p.operator_id, p.title, p.description, p.domain, p.delivery_form, p.grade, "
    "p.prices::text AS prices, p.permitted_purposes, p.registration_code, p.state, "
    "a.state AS authorization_state, a.term_start, a.term_end, "
    "GREATEST(p.updated_at, COALESCE(a.updated_at, p.updated_at)) AS version "
    "FROM listings_products p LEFT JOIN listings_authorizations a ON a.id = p.authorization_id "
)


def _product_change(row: Mapping[str, Any], today: date) -> ProductChange:
    # Authorized: the authorization it was listed under is active and today is inside its
    # term, so an ended term counts even before the expiry job has delisted the product.
    authorized = (
        row["authorization_state"] == "active" and row["term_start"] <= today <= row["term_end"]
    )
    listed = row["state"] == "listed"
    product = ListedProduct(
        product_id=str(row["id"]),
        operator_id=str(row["operator_id"]),
        title=row["title"],
        description=row["description"],
        domain=_of(DataDomain, row["domain"]),
        delivery_form=_of(DeliveryForm, row["delivery_form"]),
        grade=_of(Grade, row["grade"]),
        prices=_prices(row["prices"]),
        permitted_purposes=frozenset(_of(Purpose, value) for value in row["permitted_purposes"]),
        registration_code=row["registration_code"],
        active=listed,
        operator_authorized=authorized,
    )
    return ProductChange(product=product, listed=listed, version=row["version"])


async def products_changed_since(since: datetime | None, today: date) -> list[ProductChange]:
    """Products whose row or authorization changed after ``since`` (all of them for ``None``)."""
    if since is None:
        rows = await _rows(_PRODUCT_SQL + "ORDER BY version, p.id")
    else:
        # One branch per table, so that each reads its own updated_at index; an OR across the
        # join would scan every product at each sync.
        rows = await _rows(
            _PRODUCT_SQL  # noqa: S608 -- constant SQL, values are bound parameters
            + "WHERE p.id IN (SELECT id FROM listings_products WHERE updated_at > {} "
            "UNION SELECT changed.id FROM listings_products changed "
            "JOIN listings_authorizations renewed ON renewed.id = changed.authorization_id "
            "WHERE renewed.updated_at > {}) ORDER BY version, p.id",
            since,
            since,
        )
    return [_product_change(row, today) for row in rows]


async def product_for_matching(product_id: UUID, today: date) -> ProductChange | None:
    row = await _one(_PRODUCT_SQL + "WHERE p.id = {}", product_id)
    return None if row is None else _product_change(row, today)


async def product_names(product_ids: Sequence[UUID]) -> dict[UUID, tuple[str, str]]:
    """(title, operator name) of each product, for showing matches and offers."""
    rows = await _rows(
        "SELECT id, title, operator_name FROM listings_products WHERE id = ANY({})",
        list(product_ids),
    )
    return {row["id"]: (row["title"], row["operator_name"]) for row in rows}


# --- stored matches and the refresh watermark -------------------------------------------------


@dataclass(frozen=True)
class StoredMatch:
    demand_id: UUID
    product_id: UUID
    operator_org_id: UUID
    rank: int


async def stored_matches(demand_ids: Sequence[UUID]) -> dict[UUID, list[StoredMatch]]:
    rows = await _rows(
        "SELECT demand_id, product_id, operator_org_id, rank FROM trading_matches "
        "WHERE demand_id = ANY({}) ORDER BY demand_id, rank",
        list(demand_ids),
    )
    result: dict[UUID, list[StoredMatch]] = {}
    for row in rows:
        result.setdefault(row["demand_id"], []).append(
            StoredMatch(row["demand_id"], row["product_id"], row["operator_org_id"], row["rank"])
        )
    return result


async def replace_matches(
    demand_id: UUID, matches: Sequence[tuple[Match, str]], now: datetime
) -> None:
    """Store a demand's ranked matches, each with its product's operator id."""
    await _rows("DELETE FROM trading_matches WHERE demand_id = {}", demand_id)
    for rank, (match, operator_id) in enumerate(matches, start=1):
        await _rows(
            "INSERT INTO trading_matches (demand_id, product_id, operator_org_id, rank, score, "
            "matched_terms, unit, price_minor, computed_at) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
            demand_id,
            UUID(match.product_id),
            UUID(operator_id),
            rank,
            match.score,
            list(match.matched_terms),
            match.price.unit.value,
            match.price.price_minor,
            now,
        )


async def try_refresh_lock() -> bool:
    """One refresh at a time across processes; the lock is released at commit."""
    row = await _one(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('trading:refresh', 0)) AS ok"
    )
    return bool(row and row["ok"])


async def refresh_watermarks() -> tuple[datetime | None, datetime | None]:
    row = await _one(
        "SELECT products_seen_at, demands_seen_at FROM trading_refresh_state WHERE id = 1"
    )
    if row is None:
        return None, None
    return row["products_seen_at"], row["demands_seen_at"]


async def save_refresh_watermarks(products_seen_at: datetime, demands_seen_at: datetime) -> None:
    await _rows(
        "INSERT INTO trading_refresh_state (id, products_seen_at, demands_seen_at) "
        "VALUES (1, {}, {}) ON CONFLICT (id) DO UPDATE SET "
        "products_seen_at = EXCLUDED.products_seen_at, demands_seen_at = EXCLUDED.demands_seen_at",
        products_seen_at,
        demands_seen_at,
    )
