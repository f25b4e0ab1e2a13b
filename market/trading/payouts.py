"""Staff pay an operator's payable balance out to its bank account (operators without a Stripe
connected account; those are paid by Stripe's transfers). The rules of the money are
``settlement.payouts``; this use case checks the operator and answers problems."""

from __future__ import annotations

import uuid
from datetime import date

from market.accounts.model import OrganisationKind, Principal, Role
from market.errors import ConflictError, NotFoundError
from market.trading.order_tables import connection
from market.trading.orders import connected_account_of, settlement_rules
from market.trading.statements import parse_period
from settlement import payouts
from settlement.money import Money


def _actor(principal: Principal) -> str:
    return f"{principal.role.value}:{principal.organisation_id}"


async def _require_operator(operator_id: uuid.UUID) -> None:
    async with connection() as conn:
        kind = await conn.fetchval("SELECT kind FROM organisations WHERE id = $1", operator_id)
    if kind != OrganisationKind.OPERATOR.value:
        raise NotFoundError("no such operator", field="operator_id")


async def instruct(staff: Principal, operator_id: uuid.UUID, *, amount_minor: int | None,
                   currency: str, period: str | None, idempotency_key: str,
                   today: date) -> payouts.Payout:
    """A payout of ``amount_minor`` (all that is payable when None), for ``period`` when the
    payout settles one (a year or month label), else on demand."""
    await _require_operator(operator_id)
    if await connected_account_of(operator_id) is not None:
        raise ConflictError("the operator is paid through its Stripe connected account",
                            field="operator_id")
    label = None if period is None else parse_period(period).label
    async with settlement_rules():
        return await payouts.instruct(
            str(operator_id), amount=None if amount_minor is None
            else Money(amount_minor, currency), currency=currency, period=label,
            idempotency_key=idempotency_key, actor=_actor(staff), today=today)


async def mark_sent(staff: Principal, reference: str, *, bank_transaction_ref: str,
                    sent_on: date) -> payouts.Payout:
    async with settlement_rules():
        return await payouts.mark_sent(reference, bank_transaction_ref=bank_transaction_ref,
                                       sent_on=sent_on, actor=_actor(staff))


async def visible_payouts(principal: Principal, operator_id: uuid.UUID) -> list[payouts.Payout]:
    """The operator's payouts, to itself, staff or the regulator (others: no such operator)."""
    if principal.role not in (Role.STAFF, Role.REGULATOR) and (
            principal.role is not Role.OPERATOR or principal.organisation_id != operator_id):
        raise NotFoundError("no such operator", field="operator_id")
    await _require_operator(operator_id)
    return await payouts.payouts_of(str(operator_id))
