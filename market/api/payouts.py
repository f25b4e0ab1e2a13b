"""Operator payouts over HTTP: staff instruct a bank payout of an operator's payable balance
(with an ``Idempotency-Key``) and record when the bank sent it; the operator, staff and the
regulator read an operator's payouts (they also appear on its statements)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from market.accounts.model import Role
from market.api.access import AUTHENTICATED, Caller, roles
from market.api.orders import Config, IdempotencyKey
from market.api.statements import PayoutOut, payout_out
from market.errors import InvalidInputError
from market.trading import orders, payouts

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"\S")]


class PayoutIn(msgspec.Struct, forbid_unknown_fields=True):
    # Absent: all that is payable now.
    amount_minor: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None
    # The year or month the payout settles ("2026" or "2026-11"); absent: on demand.
    period: str | None = None
    currency: str = "CNY"


class PayoutSentIn(msgspec.Struct, forbid_unknown_fields=True):
    bank_transaction_ref: Text
    sent_on: date


class PayoutController(Controller):
    path = "/"
    tags = ["payouts"]
    opt = AUTHENTICATED

    @post("/operators/{operator_id:uuid}/payouts", opt=roles(Role.STAFF), status_code=201,
          summary="Instruct a bank payout of an operator's payable balance (staff); the "
                  "Idempotency-Key header is required")
    async def instruct_payout(self, principal: Caller, order_config: Config,
                              operator_id: FromPath[UUID], data: JSONBody[PayoutIn],
                              idempotency_key: IdempotencyKey = None) -> PayoutOut:
        if idempotency_key is None:
            raise InvalidInputError("the Idempotency-Key header is required",
                                    field="Idempotency-Key")
        return payout_out(await payouts.instruct(
            principal, operator_id, amount_minor=data.amount_minor, currency=data.currency,
            period=data.period, idempotency_key=orders.checked_idempotency_key(idempotency_key),
            today=order_config.today(datetime.now(UTC))))

    @post("/payouts/{reference:str}/sent", opt=roles(Role.STAFF), status_code=200,
          summary="Record the bank line that sent a payout (staff)")
    async def payout_sent(self, principal: Caller, reference: FromPath[str],
                          data: JSONBody[PayoutSentIn]) -> PayoutOut:
        return payout_out(await payouts.mark_sent(
            principal, reference, bank_transaction_ref=data.bank_transaction_ref,
            sent_on=data.sent_on))

    @get("/operators/{operator_id:uuid}/payouts",
         opt=roles(Role.STAFF, Role.REGULATOR, Role.OPERATOR),
         summary="An operator's payouts (the operator itself, staff, regulator)")
    async def list_payouts(self, principal: Caller,
                           operator_id: FromPath[UUID]) -> list[PayoutOut]:
        return [payout_out(p) for p in await payouts.visible_payouts(principal, operator_id)]
