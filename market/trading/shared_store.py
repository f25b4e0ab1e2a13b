"""SQL of demand shared across exchanges: versions and the peer outbox at a demand's exchange,
peers' demands and the offers on them at a receiving one. Rows in, records out; every function
runs on the caller's transaction when there is one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose, Vocabulary
from listings.product import Price
from market.trading.matching import Demand
from market.trading.store import CloseReason, DemandState, OfferState, unit_budgets_json
from market.trading.tables import DemandRow

Row = dict[str, Any]


V = TypeVar("V", bound=Vocabulary)


def _of(vocabulary: type[V], value: object) -> V:
    return vocabulary.from_wire(value, f"stored {vocabulary.__name__}")


async def _rows(sql: str, *args: object) -> list[Row]:
    result = await DemandRow.raw(sql, *args).run()
    return [dict(row) for row in result]


async def _one(sql: str, *args: object) -> Row | None:
    rows = await _rows(sql, *args)
    return rows[0] if rows else None


def _json(raw: object) -> Any:
    return json.loads(raw) if isinstance(raw, str | bytes) else raw


_LOCK = {True: " FOR UPDATE", False: ""}


# --- versions of this exchange's shared demands -----------------------------------------------


async def insert_demand_version(demand_id: UUID, state: DemandState,
                                message: Mapping[str, object], now: datetime) -> int:
    """Store the demand's next version (one more than the last) and return its number."""
    rows = await _rows(
        "INSERT INTO trading_shared_demand_versions (demand_id, version, state, message, "
        "created_at) SELECT {}, COALESCE(MAX(version), 0) + 1, {}, {}::jsonb, {} "
        "FROM trading_shared_demand_versions WHERE demand_id = {} RETURNING version",
        demand_id, state.value, json.dumps(dict(message), ensure_ascii=False), now, demand_id)
    return int(rows[0]["version"])


# --- the outbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    id: UUID
    kind: str
    subject: UUID
    version: int
    peer_origin: str
    message: dict[str, Any]
    state: str
    attempts: int
    last_error: str
    created_at: datetime


def _delivery(row: Mapping[str, Any]) -> Delivery:
    return Delivery(id=row["id"], kind=row["kind"], subject=row["subject"],
                    version=row["version"], peer_origin=row["peer_origin"],
                    message=_json(row["message"]), state=row["state"],
                    attempts=row["attempts"], last_error=row["last_error"],
                    created_at=row["created_at"])


_DELIVERY_COLUMNS = ("id, kind, subject, version, peer_origin, message::text AS message, state, "
                     "attempts, last_error, created_at")


async def queue_delivery(kind: str, subject: UUID, version: int, peer_origin: str,  # noqa: PLR0917 -- one value per column
                         message: Mapping[str, object], now: datetime) -> None:
    await _rows(
        "INSERT INTO trading_peer_deliveries (id, kind, subject, version, peer_origin, message, "
        "state, next_attempt_at, created_at) VALUES ({}, {}, {}, {}, {}, {}::jsonb, 'pending', "
        "{}, {}) ON CONFLICT (kind, subject, version, peer_origin) DO NOTHING",
        uuid4(), kind, subject, version, peer_origin,
        json.dumps(dict(message), ensure_ascii=False), now, now)


async def fan_out_demand_versions(peer_origin: str, today: date, now: datetime) -> int:
    """Queue for ``peer_origin`` the latest version of each shared demand it has not been sent:
    every new version of a demand it was sent before, and the open demands it has never been
    sent (a peer admitted after they were posted). Older pending versions to it are superseded:
    a peer needs only the latest. Returns how many were queued."""
    queued = await _rows(
        "INSERT INTO trading_peer_deliveries (id, kind, subject, version, peer_origin, message, "
        "state, next_attempt_at, created_at) "
        "SELECT gen_random_uuid(), 'SharedDemand', v.demand_id, v.version, {}, v.message, "
        "'pending', {}, {} FROM (SELECT DISTINCT ON (demand_id) demand_id, version, state, "
        "message FROM trading_shared_demand_versions ORDER BY demand_id, version DESC) v "
        "JOIN trading_demands t ON t.id = v.demand_id "
        "WHERE NOT EXISTS (SELECT 1 FROM trading_peer_deliveries d WHERE d.kind = 'SharedDemand' "
        "AND d.subject = v.demand_id AND d.peer_origin = {} AND d.version >= v.version) "
        "AND ((v.state = 'open' AND t.deadline >= {}) OR EXISTS (SELECT 1 FROM "
        "trading_peer_deliveries d WHERE d.kind = 'SharedDemand' AND d.subject = v.demand_id "
        "AND d.peer_origin = {})) "
        "ON CONFLICT (kind, subject, version, peer_origin) DO NOTHING RETURNING id",
        peer_origin, now, now, peer_origin, today, peer_origin)
    await _rows(
        "UPDATE trading_peer_deliveries d SET state = 'superseded', next_attempt_at = NULL "
        "WHERE d.kind = 'SharedDemand' AND d.peer_origin = {} AND d.state = 'pending' "
        "AND EXISTS (SELECT 1 FROM trading_peer_deliveries n WHERE n.kind = d.kind "
        "AND n.subject = d.subject AND n.peer_origin = d.peer_origin AND n.version > d.version)",
        peer_origin)
    return len(queued)


async def claim_due_deliveries(now: datetime, lease_until: datetime, batch: int
                               ) -> list[Delivery]:
    """Claim up to ``batch`` due deliveries by moving their next attempt past the lease, so
    that no other worker sends them meanwhile and no row lock is held during the HTTP call."""
    rows = await _rows(
        "UPDATE trading_peer_deliveries d SET next_attempt_at = {} FROM ("
        "SELECT id FROM trading_peer_deliveries WHERE state = 'pending' "
        "AND next_attempt_at <= {} ORDER BY next_attempt_at, sequence LIMIT {} "
        "FOR UPDATE SKIP LOCKED) AS due WHERE d.id = due.id "
        "RETURNING d.id, d.kind, d.subject, d.version, d.peer_origin, "
        "d.message::text AS message, d.state, d.attempts, d.last_error, d.created_at",
        lease_until, now, batch)
    return [_delivery(row) for row in rows]


async def record_delivery(delivery: Delivery, state: str, *, error: str,
                          next_attempt_at: datetime | None, lease_until: datetime,
                          now: datetime) -> bool:
    """Record an attempt's outcome, unless the claim lapsed and another worker claimed the
    delivery since (its outcome is the one that counts); whether it was recorded."""
    rows = await _rows(
        "UPDATE trading_peer_deliveries SET state = {}, attempts = attempts + 1, "
        "last_error = {}, next_attempt_at = {}, delivered_at = CASE WHEN {} = 'delivered' "
        "THEN {}::timestamptz ELSE delivered_at END "
        "WHERE id = {} AND state = 'pending' AND next_attempt_at = {} RETURNING id",
        state, error, next_attempt_at, state, now, delivery.id, lease_until)
    return bool(rows)


async def list_deliveries(*, subject: UUID | None = None) -> list[Delivery]:
    rows = await _rows(
        f"SELECT {_DELIVERY_COLUMNS} FROM trading_peer_deliveries "  # noqa: S608 -- constant columns
        "WHERE {}::uuid IS NULL OR subject = {} ORDER BY sequence", subject, subject)
    return [_delivery(row) for row in rows]


# --- peers' demands, at a receiving exchange --------------------------------------------------


@dataclass(frozen=True)
class PeerDemandRecord:
    """A peer's shared demand at its latest accepted version; ``demand`` is its matching view,
    with this exchange's id for it and the origin in place of the unknown buyer."""

    id: UUID
    origin: str
    remote_demand_id: UUID
    version: int
    state: DemandState
    close_reason: CloseReason | None
    demand: Demand
    currency: str
    digest: str
    received_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PeerDemandValues:
    """What a version of a peer's demand says, checked and parsed."""

    origin: str
    remote_demand_id: UUID
    version: int
    state: DemandState
    close_reason: CloseReason | None
    title: str
    description: str
    domains: frozenset[DataDomain]
    purpose: Purpose
    budget_minor_per_unit: int | None
    unit_budgets_minor: Mapping[ChargingUnit, int]
    currency: str
    delivery_forms: frozenset[DeliveryForm]
    grade_clearance: Grade
    deadline: date


def _peer_demand(row: Mapping[str, Any]) -> PeerDemandRecord:
    budgets = _json(row["unit_budgets"])
    reason = row["close_reason"]
    demand = Demand(
        demand_id=str(row["id"]), buyer_org_id=row["origin"], title=row["title"],
        description=row["description"],
        domains=frozenset(_of(DataDomain, value) for value in row["domains"]),
        purpose=_of(Purpose, row["purpose"]),
        budget_minor_per_unit=row["budget_minor_per_unit"],
        unit_budgets_minor={_of(ChargingUnit, unit): int(amount)
                            for unit, amount in budgets.items()},
        delivery_forms=frozenset(_of(DeliveryForm, value) for value in row["delivery_forms"]),
        grade_clearance=_of(Grade, row["grade_clearance"]), deadline=row["deadline"])
    return PeerDemandRecord(
        id=row["id"], origin=row["origin"], remote_demand_id=row["remote_demand_id"],
        version=row["version"], state=_of(DemandState, row["state"]),
        close_reason=None if reason is None else _of(CloseReason, reason), demand=demand,
        currency=row["currency"], digest=row["digest"], received_at=row["received_at"],
        updated_at=row["updated_at"])


_PEER_DEMAND_COLUMNS = (
    "id, origin, remote_demand_id, version, state, close_reason, title, description, domains, "
    "purpose, budget_minor_per_unit, unit_budgets::text AS unit_budgets, currency, "
    "delivery_forms, grade_clearance, deadline, digest, received_at, updated_at")


async def peer_demand(peer_demand_id: UUID, *, lock: bool = False) -> PeerDemandRecord | None:
    row = await _one(f"SELECT {_PEER_DEMAND_COLUMNS} FROM trading_peer_demands "  # noqa: S608 -- constant columns
                     "WHERE id = {}" + _LOCK[lock], peer_demand_id)
    return None if row is None else _peer_demand(row)


async def peer_demand_by_remote(origin: str, remote_demand_id: UUID, *, lock: bool = False
                                ) -> PeerDemandRecord | None:
    row = await _one(f"SELECT {_PEER_DEMAND_COLUMNS} FROM trading_peer_demands "  # noqa: S608 -- constant columns
                     "WHERE origin = {} AND remote_demand_id = {}" + _LOCK[lock],
                     origin, remote_demand_id)
    return None if row is None else _peer_demand(row)


async def list_peer_demands(*, states: list[DemandState] | None = None) -> list[PeerDemandRecord]:
    values = None if states is None else [state.value for state in states]
    rows = await _rows(f"SELECT {_PEER_DEMAND_COLUMNS} FROM trading_peer_demands "  # noqa: S608 -- constant columns
                       "WHERE {}::text[] IS NULL OR state = ANY({}) "
                       "ORDER BY received_at DESC, id", values, values)
    return [_peer_demand(row) for row in rows]


async def upsert_peer_demand(values: PeerDemandValues, *, digest: str,
                             signed_message: Mapping[str, object], signature: str,
                             now: datetime) -> UUID:
    """Store a version of a peer's demand over the earlier one; returns this exchange's id."""
    rows = await _rows(
        "INSERT INTO trading_peer_demands (id, origin, remote_demand_id, version, state, "
        "close_reason, title, description, domains, purpose, budget_minor_per_unit, "
        "unit_budgets, currency, delivery_forms, grade_clearance, deadline, digest, "
        "signed_message, signature, received_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}, "
        "{}, {}, {}, {}, {}, {}::jsonb, {}, {}, {}, {}, {}, {}::jsonb, {}, {}, {}) "
        "ON CONFLICT (origin, remote_demand_id) DO UPDATE SET version = EXCLUDED.version, "
        "state = EXCLUDED.state, close_reason = EXCLUDED.close_reason, title = EXCLUDED.title, "
        "description = EXCLUDED.description, domains = EXCLUDED.domains, "
        "purpose = EXCLUDED.purpose, budget_minor_per_unit = EXCLUDED.budget_minor_per_unit, "
        "unit_budgets = EXCLUDED.unit_budgets, currency = EXCLUDED.currency, "
        "delivery_forms = EXCLUDED.delivery_forms, grade_clearance = EXCLUDED.grade_clearance, "
        "deadline = EXCLUDED.deadline, digest = EXCLUDED.digest, "
        "signed_message = EXCLUDED.signed_message, signature = EXCLUDED.signature, "
        "updated_at = EXCLUDED.updated_at RETURNING id",
        uuid4(), values.origin, values.remote_demand_id, values.version, values.state.value,
        None if values.close_reason is None else values.close_reason.value, values.title,
        values.description, sorted(domain.value for domain in values.domains),
        values.purpose.value, values.budget_minor_per_unit,
        unit_budgets_json(values.unit_budgets_minor), values.currency,
        sorted(form.value for form in values.delivery_forms), values.grade_clearance.value,
        values.deadline, digest, json.dumps(dict(signed_message), ensure_ascii=False),
        signature, now, now)
    return UUID(str(rows[0]["id"]))


# --- offers on peers' demands, at the offering exchange ---------------------------------------


@dataclass(frozen=True)
class PeerOfferRecord:
    id: UUID
    peer_demand_id: UUID
    operator_org_id: UUID
    product_id: UUID
    price: Price
    message: str
    state: OfferState
    decision_reason: str
    created_at: datetime
    decided_at: datetime | None


def _price(row: Mapping[str, Any]) -> Price:
    return Price(purpose=_of(Purpose, row["purpose"]), unit=_of(ChargingUnit, row["unit"]),
                 price_minor=int(row["price_minor"]), currency=row["currency"])


def _peer_offer(row: Mapping[str, Any]) -> PeerOfferRecord:
    return PeerOfferRecord(
        id=row["id"], peer_demand_id=row["peer_demand_id"],
        operator_org_id=row["operator_org_id"], product_id=row["product_id"],
        price=_price(row), message=row["message"], state=_of(OfferState, row["state"]),
        decision_reason=row["decision_reason"], created_at=row["created_at"],
        decided_at=row["decided_at"])


async def insert_peer_offer(offer_id: UUID, peer_demand_id: UUID, operator_org_id: UUID,  # noqa: PLR0917 -- one value per column
                            product_id: UUID, price: Price, message: str, now: datetime) -> None:
    await _rows(
        "INSERT INTO trading_peer_demand_offers (id, peer_demand_id, operator_org_id, "
        "product_id, purpose, unit, price_minor, currency, message, state, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, 'pending', {})",
        offer_id, peer_demand_id, operator_org_id, product_id, price.purpose.value,
        price.unit.value, price.price_minor, price.currency, message, now)


async def peer_offer(offer_id: UUID, *, lock: bool = False) -> PeerOfferRecord | None:
    row = await _one("SELECT * FROM trading_peer_demand_offers WHERE id = {}" + _LOCK[lock],  # noqa: S608 -- a constant suffix
                     offer_id)
    return None if row is None else _peer_offer(row)


async def list_peer_offers(*, peer_demand_id: UUID | None = None,
                           operator_org_id: UUID | None = None) -> list[PeerOfferRecord]:
    rows = await _rows(
        "SELECT * FROM trading_peer_demand_offers WHERE ({}::uuid IS NULL OR peer_demand_id = {}) "
        "AND ({}::uuid IS NULL OR operator_org_id = {}) ORDER BY created_at, id",
        peer_demand_id, peer_demand_id, operator_org_id, operator_org_id)
    return [_peer_offer(row) for row in rows]


async def pending_peer_offer_exists(peer_demand_id: UUID, product_id: UUID) -> bool:
    row = await _one("SELECT 1 AS found FROM trading_peer_demand_offers WHERE peer_demand_id = {} "
                     "AND product_id = {} AND state = 'pending'", peer_demand_id, product_id)
    return row is not None


async def decide_peer_offer(offer_id: UUID, state: OfferState, reason: str, now: datetime
                            ) -> None:
    await _rows("UPDATE trading_peer_demand_offers SET state = {}, decision_reason = {}, "
                "decided_at = {} WHERE id = {}", state.value, reason, now, offer_id)


# --- peers' offers on this exchange's demands -------------------------------------------------


@dataclass(frozen=True)
class ForeignOfferRecord:
    """An offer a peer exchange's operator made on one of this exchange's demands."""

    id: UUID
    demand_id: UUID
    peer_origin: str
    exchange_name: str
    remote_offer_id: UUID
    demand_version: int
    product_id: UUID
    product_title: str
    operator_id: UUID
    operator_name: str
    registration_code: str
    delivery_form: DeliveryForm
    price: Price
    message: str
    state: OfferState
    decision_reason: str
    digest: str
    received_at: datetime
    decided_at: datetime | None


def _foreign_offer(row: Mapping[str, Any]) -> ForeignOfferRecord:
    return ForeignOfferRecord(
        id=row["id"], demand_id=row["demand_id"], peer_origin=row["peer_origin"],
        exchange_name=row["exchange_name"], remote_offer_id=row["remote_offer_id"],
        demand_version=row["demand_version"], product_id=row["product_id"],
        product_title=row["product_title"], operator_id=row["operator_id"],
        operator_name=row["operator_name"], registration_code=row["registration_code"],
        delivery_form=_of(DeliveryForm, row["delivery_form"]), price=_price(row),
        message=row["message"], state=_of(OfferState, row["state"]),
        decision_reason=row["decision_reason"], digest=row["digest"],
        received_at=row["received_at"], decided_at=row["decided_at"])


_FOREIGN_OFFER_COLUMNS = (
    "id, demand_id, peer_origin, exchange_name, remote_offer_id, demand_version, product_id, "
    "product_title, operator_id, operator_name, registration_code, delivery_form, purpose, unit, "
    "price_minor, currency, message, state, decision_reason, digest, received_at, decided_at")


@dataclass(frozen=True)
class ForeignOfferValues:
    demand_id: UUID
    peer_origin: str
    exchange_name: str
    remote_offer_id: UUID
    demand_version: int
    product_id: UUID
    product_title: str
    operator_id: UUID
    operator_name: str
    registration_code: str
    delivery_form: DeliveryForm
    price: Price
    message: str


async def insert_foreign_offer(offer_id: UUID, values: ForeignOfferValues, *, digest: str,
                               signed_message: Mapping[str, object], signature: str,
                               now: datetime) -> None:
    await _rows(
        "INSERT INTO trading_foreign_offers (id, demand_id, peer_origin, exchange_name, "
        "remote_offer_id, demand_version, product_id, product_title, operator_id, operator_name, "
        "registration_code, delivery_form, purpose, unit, price_minor, currency, message, state, "
        "digest, signed_message, signature, received_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, "
        "{}, {}, {}, {}, {}, {}, {}, {}, {}, 'pending', {}, {}::jsonb, {}, {})",
        offer_id, values.demand_id, values.peer_origin, values.exchange_name,
        values.remote_offer_id, values.demand_version, values.product_id, values.product_title,
        values.operator_id, values.operator_name, values.registration_code,
        values.delivery_form.value, values.price.purpose.value, values.price.unit.value,
        values.price.price_minor, values.price.currency, values.message, digest,
        json.dumps(dict(signed_message), ensure_ascii=False), signature, now)


async def foreign_offer(offer_id: UUID, *, lock: bool = False) -> ForeignOfferRecord | None:
    row = await _one(f"SELECT {_FOREIGN_OFFER_COLUMNS} FROM trading_foreign_offers "  # noqa: S608 -- constant columns
                     "WHERE id = {}" + _LOCK[lock], offer_id)
    return None if row is None else _foreign_offer(row)


async def foreign_offer_by_remote(peer_origin: str, remote_offer_id: UUID
                                  ) -> ForeignOfferRecord | None:
    row = await _one(f"SELECT {_FOREIGN_OFFER_COLUMNS} FROM trading_foreign_offers "  # noqa: S608 -- constant columns
                     "WHERE peer_origin = {} AND remote_offer_id = {}",
                     peer_origin, remote_offer_id)
    return None if row is None else _foreign_offer(row)


async def list_foreign_offers(demand_id: UUID | None) -> list[ForeignOfferRecord]:
    """The offers on one demand, or on every demand (for reconciliation) with None."""
    rows = await _rows(f"SELECT {_FOREIGN_OFFER_COLUMNS} FROM trading_foreign_offers "  # noqa: S608 -- constant columns
                       "WHERE {}::uuid IS NULL OR demand_id = {} ORDER BY received_at, id",
                       demand_id, demand_id)
    return [_foreign_offer(row) for row in rows]


async def decide_foreign_offer(offer_id: UUID, state: OfferState, reason: str, now: datetime
                               ) -> None:
    await _rows("UPDATE trading_foreign_offers SET state = {}, decision_reason = {}, "
                "decided_at = {} WHERE id = {}", state.value, reason, now, offer_id)
