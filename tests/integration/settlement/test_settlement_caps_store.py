"""Fee caps and revenue ceilings in the database: versions, ledgered approvals, carry-over, and a
revenue reservation that cannot overshoot under concurrency."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg
import pytest

from ledger.entries import LedgerRecord
from ledger.tables import LedgerLeaf
from settlement import caps_service
from settlement.caps import ChargingUnit, FeeCap, Purpose, RevenueCeiling, RevenuePeriod
from settlement.errors import (
    CapVersionOverlapError,
    CurrencyMismatchError,
    NoRevenueCeilingError,
    RevenueReleaseError,
)
from settlement.money import Money
from settlement.tables import JournalTransactionRow

PAID = Purpose.INDUSTRY_DEVELOPMENT
Y2026 = RevenuePeriod("2026")


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def cap(amount_minor: int, start: date, end: date | None = None,
        product: str = "product-1") -> FeeCap:
    return FeeCap(product, PAID, ChargingUnit.PER_CALL, cny(amount_minor), start, end)


def ceiling(approved_minor: int, period: RevenuePeriod = Y2026,
            operator: str = "operator-1") -> RevenueCeiling:
    return RevenueCeiling(operator, period, cny(approved_minor), cny(0), cny(0))


async def cap_in_force(unit: ChargingUnit, on: date) -> FeeCap | None:
    return (await caps_service.order_rules("product-1", PAID, unit, "operator-1", on)).cap


async def test_cap_versions_supersede_and_are_ledgered(db: str) -> None:
    first = await caps_service.approve_fee_cap(cap(500, date(2026, 1, 1)), approved_by="reg:1",
                                               approval_reference="发改价格〔2026〕1号")
    await caps_service.approve_fee_cap(cap(400, date(2026, 7, 1)), approved_by="reg:1",
                                       approval_reference="发改价格〔2026〕9号")
    in_june = await cap_in_force(ChargingUnit.PER_CALL, date(2026, 6, 30))
    in_july = await cap_in_force(ChargingUnit.PER_CALL, date(2026, 7, 1))
    assert in_june is not None
    assert in_june.cap == cny(500)
    assert in_june.effective_to == date(2026, 6, 30)
    assert in_july is not None
    assert in_july.cap == cny(400)
    assert await cap_in_force(ChargingUnit.PER_CALL, date(2025, 12, 31)) is None
    assert await cap_in_force(ChargingUnit.PER_PRODUCT, date(2026, 7, 1)) is None
    history = await caps_service.fee_cap_history("product-1")
    assert history[0].id == first.id
    leaves = await LedgerLeaf.select().order_by(LedgerLeaf.leaf_index).run()
    records = [LedgerRecord.from_canonical_json(leaf["entry"]) for leaf in leaves]
    assert [r.kind for r in records] == ["settlement.fee_cap_approved"] * 2
    assert list(records[1].payload["supersedes"]) == [str(first.id)]
    assert records[1].payload["cap_minor"] == "400"


async def test_an_overlapping_cap_version_is_refused_and_nothing_written(db: str) -> None:
    await caps_service.approve_fee_cap(cap(500, date(2026, 1, 1), date(2026, 12, 31)),
                                       approved_by="reg:1", approval_reference="A")
    with pytest.raises(CapVersionOverlapError) as caught:
        await caps_service.approve_fee_cap(cap(400, date(2026, 6, 1)), approved_by="reg:1",
                                           approval_reference="B")
    assert caught.value.field == "effective_from"
    assert len(await caps_service.fee_cap_history("product-1")) == 1
    assert await LedgerLeaf.count() == 1


async def test_cap_versions_are_history_in_the_database(db: str) -> None:
    await caps_service.approve_fee_cap(cap(500, date(2026, 1, 1)), approved_by="r",
                                       approval_reference="A")
    connection = await asyncpg.connect(db)
    try:
        for statement in ("UPDATE fee_caps SET cap_minor = 1", "DELETE FROM fee_caps"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
    finally:
        await connection.close()


async def test_ceiling_versions_and_carry_over(db: str) -> None:
    await caps_service.approve_revenue_ceiling(ceiling(1_000), approved_by="reg:2",
                                               approval_reference="C1")
    assert await caps_service.reserve_revenue("operator-1", Y2026, cny(800))
    # Re-approved lower after 800 was committed: 200 of 2026's revenue is above its ceiling…
    await caps_service.approve_revenue_ceiling(ceiling(600), approved_by="reg:2",
                                               approval_reference="C2")
    status_2026 = await caps_service.ceiling_status("operator-1", Y2026)
    assert (status_2026.effective, status_2026.committed) == (cny(600), cny(800))
    assert status_2026.headroom == cny(0)
    assert not await caps_service.reserve_revenue("operator-1", Y2026, cny(1))
    # …and is deducted from 2027's ceiling.
    await caps_service.approve_revenue_ceiling(ceiling(1_000, RevenuePeriod("2027")),
                                               approved_by="reg:2", approval_reference="C3")
    status_2027 = await caps_service.ceiling_status("operator-1", RevenuePeriod("2027"))
    assert status_2027.carried_in_excess == cny(200)
    assert status_2027.effective == cny(800)
    assert await caps_service.reserve_revenue("operator-1", RevenuePeriod("2027"), cny(800))
    assert not await caps_service.reserve_revenue("operator-1", RevenuePeriod("2027"), cny(1))
    # Releasing 2026 revenue (a refund) shrinks the excess carried into 2027.
    assert await caps_service.release_revenue("operator-1", Y2026, cny(150)) == cny(650)
    status_2027 = await caps_service.ceiling_status("operator-1", RevenuePeriod("2027"))
    assert status_2027.effective == cny(950)
    kinds = [LedgerRecord.from_canonical_json(leaf["entry"]).kind
             for leaf in await LedgerLeaf.select().run()]
    assert kinds.count("settlement.revenue_ceiling_approved") == 3


async def test_reservation_needs_a_ceiling_and_the_same_currency(db: str) -> None:
    with pytest.raises(NoRevenueCeilingError):
        await caps_service.reserve_revenue("operator-1", Y2026, cny(1))
    await caps_service.approve_revenue_ceiling(ceiling(1_000), approved_by="r",
                                               approval_reference="C")
    with pytest.raises(CurrencyMismatchError):
        await caps_service.reserve_revenue("operator-1", Y2026, Money(1, "USD"))
    with pytest.raises(RevenueReleaseError):
        await caps_service.release_revenue("operator-1", Y2026, cny(1))


async def test_a_reservation_rolls_back_with_the_callers_transaction(db: str) -> None:
    await caps_service.approve_revenue_ceiling(ceiling(1_000), approved_by="r",
                                               approval_reference="C")

    async def failing_order() -> None:
        async with JournalTransactionRow._meta.db.transaction():
            assert await caps_service.reserve_revenue("operator-1", Y2026, cny(900))
            raise RuntimeError("order failed after reserving")

    with pytest.raises(RuntimeError):
        await failing_order()
    assert (await caps_service.ceiling_status("operator-1", Y2026)).committed == cny(0)


async def test_concurrent_reservations_never_pass_the_ceiling(db: str) -> None:
    """120 orders of 70 each race for the last 1,000 of headroom: exactly 14 fit."""
    await caps_service.approve_revenue_ceiling(ceiling(10_000), approved_by="r",
                                               approval_reference="C")
    assert await caps_service.reserve_revenue("operator-1", Y2026, cny(9_000))
    engine = JournalTransactionRow._meta.db
    # A pool, so that 120 transactions share a few connections instead of exhausting the
    # server's connection limit; each reservation still runs in its own transaction.
    await engine.start_connection_pool(min_size=1, max_size=12)
    try:
        async def order() -> bool:
            async with engine.transaction():
                return await caps_service.reserve_revenue("operator-1", Y2026, cny(70))

        results = await asyncio.gather(*(order() for _ in range(120)))
    finally:
        await engine.close_connection_pool()
    assert results.count(True) == 1_000 // 70
    status = await caps_service.ceiling_status("operator-1", Y2026)
    assert status.committed == cny(9_000 + 70 * (1_000 // 70))
    assert status.committed <= status.effective


async def test_order_rules_read_the_cap_in_force_and_the_position_in_one_go(db: str) -> None:
    """The cap of the product, purpose and unit in force on the day, and the operator's
    position in the month (its latest ceiling version, with what is committed), whatever else
    is stored for other products, operators and periods."""
    day = date(2026, 8, 10)

    async def rules() -> caps_service.OrderRules:
        return await caps_service.order_rules("product-1", PAID, ChargingUnit.PER_CALL,
                                              "operator-1", day)

    assert await rules() == caps_service.OrderRules(cap=None, position=None)
    await caps_service.approve_fee_cap(cap(500, date(2026, 1, 1)), approved_by="reg:1",
                                       approval_reference="A")
    await caps_service.approve_fee_cap(cap(400, date(2026, 7, 1)), approved_by="reg:1",
                                       approval_reference="B")
    await caps_service.approve_fee_cap(cap(999, date(2026, 1, 1), product="product-2"),
                                       approved_by="reg:1", approval_reference="C")
    july, august = RevenuePeriod("2026-07"), RevenuePeriod("2026-08")
    for approved, period in ((1_000, july), (2_000, august), (3_000, august)):
        await caps_service.approve_revenue_ceiling(ceiling(approved, period),
                                                   approved_by="reg:1", approval_reference="D")
    await caps_service.approve_revenue_ceiling(ceiling(7_000, august, operator="operator-2"),
                                               approved_by="reg:1", approval_reference="E")
    assert await caps_service.reserve_revenue("operator-1", july, cny(1_000))
    assert await caps_service.reserve_revenue("operator-1", august, cny(500))

    found = await rules()
    assert found.cap is not None
    assert (found.cap.cap, found.cap.effective_from) == (cny(400), date(2026, 7, 1))
    assert found.position == await caps_service.ceiling_status("operator-1", august)
    assert found.position is not None
    assert (found.position.approved, found.position.committed) == (cny(3_000), cny(500))
    # With no month's ceiling, the year's is the position.
    await caps_service.approve_revenue_ceiling(ceiling(9_000, Y2026, operator="operator-3"),
                                               approved_by="reg:1", approval_reference="F")
    yearly = await caps_service.order_rules("product-1", PAID, ChargingUnit.PER_CALL,
                                            "operator-3", day)
    assert yearly.position is not None
    assert (yearly.position.period, yearly.position.approved) == (Y2026, cny(9_000))
