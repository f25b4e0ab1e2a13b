"""Use cases for fee caps and revenue ceilings: approve (ledgered in the same transaction), look
up the cap in force, and reserve revenue under the ceiling without a race.

Revenue here is whatever the caller counts against the maximum permitted revenue; the orders use
case reserves the operator's revenue (price − exchange fee) of each paid order when it is placed,
and releases it when the order is cancelled, expires unpaid or is refunded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from ledger.log import append_record
from settlement import caps_store
from settlement.caps import (
    ChargingUnit,
    FeeCap,
    PeriodGranularity,
    Purpose,
    RevenueCeiling,
    RevenuePeriod,
    effective_ceiling,
    excess_to_carry_forward,
    headroom,
    validate_new_cap_version,
)
from settlement.caps import (
    cap_in_force as _cap_in_force,
)
from settlement.caps_store import StoredCeiling, StoredFeeCap
from settlement.errors import (
    InvalidMoneyError,
    NoRevenueCeilingError,
    RevenueReleaseError,
)
from settlement.money import Money
from settlement.tables import statement_connection, transaction_connection

FEE_CAP_APPROVED = "settlement.fee_cap_approved"
REVENUE_CEILING_APPROVED = "settlement.revenue_ceiling_approved"


async def approve_fee_cap(cap: FeeCap, *, approved_by: str,
                          approval_reference: str) -> StoredFeeCap:
    """Record a new version of an upper-limit fee, ledgered in the same transaction.

    An open-ended version in force before ``cap.effective_from`` is closed the day before (the
    new version supersedes it); any other overlap is a CapVersionOverlapError and writes nothing.
    """
    async with transaction_connection() as connection:
        await caps_store.lock_fee_cap_key(connection, cap.product_id, cap.purpose, cap.unit)
        versions = await caps_store.fee_cap_versions(connection, cap.product_id, cap.purpose,
                                                     cap.unit)
        superseded = [
            stored for stored in versions
            if stored.cap.effective_to is None
            and stored.cap.effective_from < cap.effective_from
        ]
        remaining = [
            stored.cap.ending_on(cap.effective_from - timedelta(days=1))
            if stored in superseded else stored.cap
            for stored in versions
        ]
        validate_new_cap_version(remaining, cap)
        for stored in superseded:
            await caps_store.close_fee_cap(connection, stored.id,
                                           cap.effective_from - timedelta(days=1))
        inserted = await caps_store.insert_fee_cap(connection, cap, approved_by=approved_by,
                                                   approval_reference=approval_reference)
        await append_record(
            FEE_CAP_APPROVED,
            actor=approved_by,
            subject=f"fee_cap:{cap.product_id}:{cap.purpose.value}:{cap.unit.value}"[:200],
            payload={
                "fee_cap_id": str(inserted.id),
                "product_id": cap.product_id,
                "purpose": cap.purpose.value,
                "unit": cap.unit.value,
                "cap_minor": str(cap.cap.amount_minor),
                "currency": cap.cap.currency,
                "effective_from": cap.effective_from.isoformat(),
                "effective_to": None if cap.effective_to is None else cap.effective_to.isoformat(),
                "approval_reference": approval_reference,
                "supersedes": [str(stored.id) for stored in superseded],
            },
        )
        return inserted


async def fee_cap_history(product_id: str) -> list[StoredFeeCap]:
    async with transaction_connection() as connection:
        return await caps_store.fee_cap_versions(connection, product_id)


async def approve_revenue_ceiling(ceiling: RevenueCeiling, *, approved_by: str,
                                  approval_reference: str) -> StoredCeiling:
    """Record (a new version of) an operator's maximum permitted revenue for a period, ledgered
    in the same transaction. The highest version is in force; earlier ones stay as history."""
    async with transaction_connection() as connection:
        existing = await caps_store.committed_revenue(connection, ceiling.operator_id)
        committed = existing.get(ceiling.period.label)
        if committed is not None:
            committed.require_same_currency(ceiling.approved, field="currency")
        stored = await caps_store.insert_ceiling(connection, ceiling, approved_by=approved_by,
                                                 approval_reference=approval_reference)
        await append_record(
            REVENUE_CEILING_APPROVED,
            actor=approved_by,
            subject=f"revenue_ceiling:{ceiling.operator_id}:{ceiling.period.label}"[:200],
            payload={
                "revenue_ceiling_id": str(stored.id),
                "operator_id": ceiling.operator_id,
                "period": ceiling.period.label,
                "version": stored.version,
                "currency": ceiling.approved.currency,
                "operating_cost_minor": str(ceiling.operating_cost.amount_minor),
                "permitted_profit_minor": str(ceiling.permitted_profit.amount_minor),
                "tax_minor": str(ceiling.tax.amount_minor),
                "approved_minor": str(ceiling.approved.amount_minor),
                "approval_reference": approval_reference,
            },
        )
        return stored


@dataclass(frozen=True, slots=True)
class CeilingStatus:
    """An operator's position in one period: ``effective = max(approved − carried_in, 0)``."""

    operator_id: str
    period: RevenuePeriod
    approved: Money
    carried_in_excess: Money
    effective: Money
    committed: Money

    @property
    def headroom(self) -> Money:
        return headroom(self.effective, self.committed)


def _status(operator_id: str, period: RevenuePeriod, ceilings: dict[str, StoredCeiling],
            committed: dict[str, Money]) -> CeilingStatus:
    current = ceilings.get(period.label)
    if current is None:
        raise NoRevenueCeilingError(
            f"operator {operator_id} has no approved maximum permitted revenue for "
            f"{period.label}",
            field="period",
        )
    currency = current.ceiling.approved.currency
    # The chain of consecutive earlier periods with approved ceilings, oldest first: excess
    # revenue carries forward through it (MISSION §6), a period without a ceiling breaks it.
    chain: list[RevenuePeriod] = []
    earlier = period.previous()
    while (earlier.label in ceilings
           and ceilings[earlier.label].ceiling.approved.currency == currency):
        chain.append(earlier)
        earlier = earlier.previous()
    carried = Money.zero(currency)
    for past in reversed(chain):
        carried = excess_to_carry_forward(
            ceilings[past.label].ceiling.approved, carried,
            committed.get(past.label, Money.zero(currency)),
        )
    approved = current.ceiling.approved
    return CeilingStatus(
        operator_id=operator_id,
        period=period,
        approved=approved,
        carried_in_excess=carried,
        effective=effective_ceiling(approved, carried),
        committed=committed.get(period.label, Money.zero(currency)),
    )


async def ceiling_status(operator_id: str, period: RevenuePeriod) -> CeilingStatus:
    async with transaction_connection() as connection:
        ceilings = await caps_store.latest_ceilings(connection, operator_id)
        committed = await caps_store.committed_revenue(connection, operator_id)
    return _status(operator_id, period, ceilings, committed)


def _position(operator_id: str, today: date, ceilings: caps_store.Ceilings,
              committed: caps_store.Committed) -> CeilingStatus | None:
    for granularity in (PeriodGranularity.MONTH, PeriodGranularity.YEAR):
        period = RevenuePeriod.containing(today, granularity)
        if period.label in ceilings:
            return _status(operator_id, period, ceilings, committed)
    return None


@dataclass(frozen=True, slots=True)
class OrderRules:
    """What a paid order is checked against on a day: the upper-limit fee in force for its
    product, purpose and unit (None when none is approved), and the operator's position under
    its maximum permitted revenue (None when no ceiling is approved for the month or year)."""

    cap: FeeCap | None
    position: CeilingStatus | None


async def order_rules(product_id: str, purpose: Purpose, unit: ChargingUnit, operator_id: str,
                      on: date) -> OrderRules:
    """The cap in force on ``on`` for (product, purpose, unit), and the operator's position in
    its ceiling period containing ``on`` (the month if a ceiling is approved for it, else the
    year, as the pricing authority approves either), in one round trip."""
    async with statement_connection() as connection:
        stored, ceilings, committed = await caps_store.caps_and_ceilings(
            connection, product_id, purpose, unit, on, operator_id=operator_id)
    return OrderRules(cap=_cap_in_force([s.cap for s in stored], product_id, purpose, unit, on),
                      position=_position(operator_id, on, ceilings, committed))


async def reserve_revenue(operator_id: str, period: RevenuePeriod, amount: Money) -> bool:
    """Commit ``amount`` of revenue to the operator's period if it fits under the effective
    ceiling; False (and nothing written) if it does not (see ``reserve_within``)."""
    async with transaction_connection() as connection:
        ceilings, committed = await caps_store.ceilings_with_committed(connection, operator_id)
        return await reserve_within(_status(operator_id, period, ceilings, committed), amount)


def reservation_within(position: CeilingStatus,
                       amount: Money) -> caps_store.RevenueReservation | None:
    """The reservation of ``amount`` under the effective ceiling of ``position``, as
    ``caps_store.reserve`` (and a use case's own database function, such as the order
    placement's) takes it; None when the amount alone exceeds the ceiling, so it cannot fit."""
    if amount.is_negative:
        raise InvalidMoneyError("revenue to reserve must not be negative", field="amount_minor")
    amount.require_same_currency(position.approved, field="currency")
    if amount > position.effective:
        return None
    return caps_store.revenue_reservation(position.operator_id, position.period, amount,
                                          position.effective)


async def reserve_within(position: CeilingStatus, amount: Money) -> bool:
    """Commit ``amount`` of revenue to the period of ``position`` if it fits under its effective
    ceiling; False (and nothing written) if it does not.

    Call it inside the order's transaction: the counter row is locked by the statement that
    checks and adds (``caps_store.reserve``) and stays locked until that transaction ends, so
    concurrent orders queue on it and the committed total can never pass the ceiling; a
    rolled-back order takes its reservation with it. ``position`` may be read earlier, without
    the lock: the effective ceiling depends only on approvals and on earlier periods, which no
    reservation in this period changes, so the lock is held from the addition to the commit and
    no longer.
    """
    reservation = reservation_within(position, amount)
    if reservation is None:
        return False
    async with transaction_connection() as connection:
        return await caps_store.reserve(connection, reservation)


async def release_revenue(operator_id: str, period: RevenuePeriod, amount: Money) -> Money:
    """Give back revenue reserved earlier (order cancelled, expired unpaid, or refunded) and
    return the period's new committed total."""
    if not amount.is_positive:
        raise InvalidMoneyError("revenue to release must be positive", field="amount_minor")
    async with transaction_connection() as connection:
        locked = await caps_store.lock_counter(connection, operator_id, period, amount.currency)
        amount.require_same_currency(locked, field="currency")
        if amount > locked:
            raise RevenueReleaseError(
                f"cannot release {amount.amount_minor}: only {locked.amount_minor} is committed "
                f"for {operator_id} in {period.label}",
                field="amount_minor",
            )
        remaining = locked - amount
        await caps_store.set_counter(connection, operator_id, period, remaining)
        return remaining

