"""SQL for fee caps, revenue ceilings and the per-(operator, period) revenue counters.

Functions take the asyncpg connection of the caller's transaction
(``tables.transaction_connection``); the use cases in ``caps_service`` own the transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from settlement.caps import ChargingUnit, FeeCap, Purpose, RevenueCeiling, RevenuePeriod
from settlement.money import Money


@dataclass(frozen=True, slots=True)
class StoredFeeCap:
    id: int
    cap: FeeCap
    approved_by: str
    approval_reference: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class StoredCeiling:
    id: int
    ceiling: RevenueCeiling
    version: int
    approved_by: str
    approval_reference: str
    recorded_at: datetime


def _fee_cap(row: Any) -> StoredFeeCap:
    return StoredFeeCap(
        id=row["id"],
        cap=FeeCap(
            product_id=row["product_id"],
            purpose=Purpose(row["purpose"]),
            unit=ChargingUnit(row["unit"]),
            cap=Money(row["cap_minor"], row["currency"]),
            effective_from=row["effective_from"],
            effective_to=row["effective_to"],
        ),
        approved_by=row["approved_by"],
        approval_reference=row["approval_reference"],
        recorded_at=row["recorded_at"],
    )


def _ceiling(row: Any) -> StoredCeiling:
    currency = row["currency"]
    return StoredCeiling(
        id=row["id"],
        ceiling=RevenueCeiling(
            operator_id=row["operator_id"],
            period=RevenuePeriod(row["period"]),
            operating_cost=Money(row["operating_cost_minor"], currency),
            permitted_profit=Money(row["permitted_profit_minor"], currency),
            tax=Money(row["tax_minor"], currency),
        ),
        version=row["version"],
        approved_by=row["approved_by"],
        approval_reference=row["approval_reference"],
        recorded_at=row["recorded_at"],
    )


async def lock_fee_cap_key(connection: Any, product_id: str, purpose: Purpose,
                           unit: ChargingUnit) -> None:
    """Serialise approvals of one cap key until commit, so two overlapping versions approved at
    the same time cannot both pass the overlap check (no btree_gist exclusion constraint: the
    extension needs rights a production role should not have)."""
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"settlement.fee_cap:{product_id}:{purpose.value}:{unit.value}",
    )


async def fee_cap_versions(connection: Any, product_id: str, purpose: Purpose | None = None,
                           unit: ChargingUnit | None = None) -> list[StoredFeeCap]:
    rows = await connection.fetch(
        "SELECT * FROM fee_caps WHERE product_id = $1 "
        "AND ($2::varchar IS NULL OR purpose = $2) AND ($3::varchar IS NULL OR unit = $3) "
        "ORDER BY purpose, unit, effective_from, id",
        product_id,
        None if purpose is None else purpose.value,
        None if unit is None else unit.value,
    )
    return [_fee_cap(row) for row in rows]


async def insert_fee_cap(connection: Any, cap: FeeCap, *, approved_by: str,
                         approval_reference: str) -> StoredFeeCap:
    row = await connection.fetchrow(
        "INSERT INTO fee_caps (product_id, purpose, unit, cap_minor, currency, effective_from, "
        "effective_to, approved_by, approval_reference) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        cap.product_id, cap.purpose.value, cap.unit.value, cap.cap.amount_minor,
        cap.cap.currency, cap.effective_from, cap.effective_to, approved_by, approval_reference,
    )
    return _fee_cap(row)


async def close_fee_cap(connection: Any, cap_id: int, last_day: date) -> None:
    await connection.execute(
        "UPDATE fee_caps SET effective_to = $2 WHERE id = $1 AND effective_to IS NULL",
        cap_id, last_day,
    )


async def latest_ceilings(connection: Any, operator_id: str) -> dict[str, StoredCeiling]:
    """The version in force (the highest) of each period's ceiling of one operator."""
    rows = await connection.fetch(
        "SELECT DISTINCT ON (period) * FROM revenue_ceilings WHERE operator_id = $1 "
        "ORDER BY period, version DESC",
        operator_id,
    )
    return {row["period"]: _ceiling(row) for row in rows}


async def insert_ceiling(connection: Any, ceiling: RevenueCeiling, *, approved_by: str,
                         approval_reference: str) -> StoredCeiling:
    # The UNIQUE (operator_id, period, version) key makes a concurrent re-approval that computed
    # the same next version fail instead of silently sharing it.
    row = await connection.fetchrow(
        "INSERT INTO revenue_ceilings (operator_id, period, version, currency, "
        "operating_cost_minor, permitted_profit_minor, tax_minor, approved_minor, approved_by, "
        "approval_reference) "
        "SELECT $1::varchar, $2::varchar, COALESCE(max(version), 0) + 1, $3, $4, $5, $6, $7, $8, "
        "$9 FROM revenue_ceilings WHERE operator_id = $1::varchar AND period = $2::varchar "
        "RETURNING *",
        ceiling.operator_id, ceiling.period.label, ceiling.approved.currency,
        ceiling.operating_cost.amount_minor, ceiling.permitted_profit.amount_minor,
        ceiling.tax.amount_minor, ceiling.approved.amount_minor, approved_by,
        approval_reference,
    )
    return _ceiling(row)


async def committed_revenue(connection: Any, operator_id: str) -> dict[str, Money]:
    rows = await connection.fetch(
        "SELECT period, currency, committed_revenue_minor FROM revenue_counters "
        "WHERE operator_id = $1",
        operator_id,
    )
    return {row["period"]: Money(row["committed_revenue_minor"], row["currency"])
            for row in rows}


# The version in force of each period's ceiling of operator {operator}, with the revenue
# committed so far in that period (NULL columns when no counter exists yet).
_CEILINGS_WITH_COMMITTED = (
    "SELECT DISTINCT ON (c.period) c.*, k.currency AS committed_currency, "
    "k.committed_revenue_minor FROM revenue_ceilings c LEFT JOIN revenue_counters k "
    "ON k.operator_id = c.operator_id AND k.period = c.period WHERE c.operator_id = {operator} "
    "ORDER BY c.period, c.version DESC"
)

Ceilings = dict[str, StoredCeiling]
Committed = dict[str, Money]


async def ceilings_with_committed(connection: Any, operator_id: str) -> tuple[Ceilings,
                                                                              Committed]:
    """In one round trip: the version in force of each period's ceiling of one operator, and
    the revenue committed so far in those periods (periods without a counter yet are absent)."""
    rows = await connection.fetch(_CEILINGS_WITH_COMMITTED.format(operator="$1"), operator_id)
    return _ceilings_and_committed(rows)


async def caps_and_ceilings(connection: Any, product_id: str, purpose: Purpose,
                            unit: ChargingUnit, on: date, *,
                            operator_id: str) -> tuple[list[StoredFeeCap], Ceilings, Committed]:
    """In one round trip, as an order needs both: the fee cap versions of (product, purpose,
    unit) in force on ``on``, and ``ceilings_with_committed`` of the operator. One row per
    ceiling (or one without a ceiling), each carrying the caps."""
    rows = await connection.fetch(
        "SELECT ARRAY(SELECT f FROM fee_caps f WHERE f.product_id = $1 AND f.purpose = $2 "  # noqa: S608 -- constant SQL
        "AND f.unit = $3 AND f.effective_from <= $4 "
        "AND (f.effective_to IS NULL OR f.effective_to >= $4)) AS fee_caps, "
        "ceiling.* FROM (SELECT) AS one LEFT JOIN LATERAL ("
        f"{_CEILINGS_WITH_COMMITTED.format(operator='$5')}) AS ceiling ON true",
        product_id, purpose.value, unit.value, on, operator_id,
    )
    caps = [_fee_cap(record) for record in rows[0]["fee_caps"]]
    return caps, *_ceilings_and_committed([row for row in rows if row["id"] is not None])


def _ceilings_and_committed(rows: list[Any]) -> tuple[Ceilings, Committed]:
    committed = {row["period"]: Money(row["committed_revenue_minor"], row["committed_currency"])
                 for row in rows if row["committed_currency"] is not None}
    return {row["period"]: _ceiling(row) for row in rows}, committed


# The value settlement_reserve_revenue takes (settlement/piccolo_migrations, 2026-11-25T11:10).
RevenueReservation = tuple[str, str, str, int, int]


def revenue_reservation(operator_id: str, period: RevenuePeriod, amount: Money,
                        limit: Money) -> RevenueReservation:
    """``amount`` to add to the period's committed revenue, to stay within ``limit``."""
    return operator_id, period.label, amount.currency, amount.amount_minor, limit.amount_minor


async def reserve(connection: Any, reservation: RevenueReservation) -> bool:
    """Add the reservation's amount to the period's committed revenue if the total stays within
    its limit (creating the counter on first use); False, and nothing written, if it would not.

    One statement: the check reads the committed total under the counter's row lock, which this
    statement takes and the caller's transaction holds until it ends, so concurrent additions
    queue on the row and each checks the total the previous one committed.
    """
    return bool(await connection.fetchval(
        "SELECT settlement_reserve_revenue($1::settlement_revenue_reservation)", reservation))


async def lock_counter(connection: Any, operator_id: str, period: RevenuePeriod,
                       currency: str) -> Money:
    """Take the counter's row lock until commit (creating it at zero on first use) and return
    the revenue committed so far."""
    await connection.execute(
        "INSERT INTO revenue_counters (operator_id, period, currency) VALUES ($1, $2, $3) "
        "ON CONFLICT (operator_id, period) DO NOTHING",
        operator_id, period.label, currency,
    )
    row = await connection.fetchrow(
        "SELECT currency, committed_revenue_minor FROM revenue_counters "
        "WHERE operator_id = $1 AND period = $2 FOR UPDATE",
        operator_id, period.label,
    )
    return Money(row["committed_revenue_minor"], row["currency"])


async def set_counter(connection: Any, operator_id: str, period: RevenuePeriod,
                      committed: Money) -> None:
    await connection.execute(
        "UPDATE revenue_counters SET committed_revenue_minor = $3, updated_at = now() "
        "WHERE operator_id = $1 AND period = $2",
        operator_id, period.label, committed.amount_minor,
    )
