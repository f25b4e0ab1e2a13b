"""Expiry of demands by the beat job: past their deadline they close as expired, on the
ledger, with the buyer told; demands still in time and closed ones are left alone."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID

from ledger.tables import LedgerLeaf
from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose
from market.accounts.model import Principal, Role
from market.trading import demands, notifications
from market.trading.store import CloseReason, DemandState, Visibility
from tests.factories import make_account

DAY = date(2027, 3, 1)


def new_demand(deadline: date) -> demands.NewDemand:
    return demands.NewDemand(
        title="采购农业气象灾害预警数据", description="农业保险定损需要县级干旱和霜冻预警。",
        domains=[DataDomain.METEOROLOGY], purpose=Purpose.INDUSTRY, budget_minor_per_unit=None,
        unit_budgets_minor={ChargingUnit.PER_PERIOD: 2_000_000},
        delivery_forms=[DeliveryForm.REPORT], grade_clearance=Grade.GENERAL, deadline=deadline,
        visibility=Visibility.EXCHANGE)


async def test_demands_past_their_deadline_expire_once(db: str) -> None:
    account = await make_account(Role.BUYER)
    buyer = Principal(account.user.id, account.organisation.id, Role.BUYER,
                      account.token_id)  # type: ignore[arg-type]
    due = await demands.post(buyer, new_demand(DAY), today=DAY)
    in_time = await demands.post(buyer, new_demand(DAY + timedelta(days=5)), today=DAY)
    withdrawn = await demands.post(buyer, new_demand(DAY), today=DAY)
    await demands.withdraw(buyer, withdrawn.id)

    assert await demands.expire_due(DAY) == []
    assert await demands.expire_due(DAY + timedelta(days=1)) == [due.id]
    assert await demands.expire_due(DAY + timedelta(days=1)) == []

    expired = await demands.get(buyer, due.id)
    assert (expired.state, expired.close_reason) == (DemandState.CLOSED, CloseReason.EXPIRED)
    assert (await demands.get(buyer, in_time.id)).state is DemandState.OPEN
    assert (await demands.get(buyer, withdrawn.id)).close_reason is CloseReason.WITHDRAWN
    leaves = await LedgerLeaf.select(LedgerLeaf.kind, LedgerLeaf.subject).where(
        LedgerLeaf.kind == "demand.expired").run()
    assert [leaf["subject"] for leaf in leaves] == [f"demand:{due.id}"]
    told = await notifications.list_for(account.organisation.id)
    assert [(n.kind, UUID(n.payload["demand_id"])) for n in told] == [
        ("demand.expired", due.id)]
