"""The buyer clearance register over HTTP: staff clear a buyer organisation for important data
(with evidence and a term) and revoke clearances; staff and the regulator read the register, a
buyer its own clearances."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from market.accounts.model import Role
from market.api.access import AUTHENTICATED, Caller, roles
from market.api.orders import Config
from market.trading import clearances

Evidence = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=r"\S")]


class ClearanceIn(msgspec.Struct, forbid_unknown_fields=True):
    buyer_org_id: UUID
    grade: str
    valid_from: date
    valid_to: date
    evidence: Evidence


class RevocationIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class ClearanceOut(msgspec.Struct):
    id: UUID
    buyer_org_id: UUID
    grade: str
    valid_from: date
    valid_to: date
    evidence: str
    granted_by: str
    granted_at: datetime
    leaf_index: int
    revoked_at: datetime | None
    revocation_reason: str | None


def clearance_out(clearance: clearances.Clearance) -> ClearanceOut:
    return ClearanceOut(
        id=clearance.id, buyer_org_id=clearance.buyer_org_id, grade=clearance.grade.value,
        valid_from=clearance.valid_from, valid_to=clearance.valid_to,
        evidence=clearance.evidence, granted_by=clearance.granted_by,
        granted_at=clearance.granted_at, leaf_index=clearance.leaf_index,
        revoked_at=clearance.revoked_at, revocation_reason=clearance.revocation_reason)


class ClearanceController(Controller):
    path = "/clearances"
    tags = ["clearances"]
    opt = AUTHENTICATED

    @post("/", opt=roles(Role.STAFF), status_code=201,
          summary="Clear a buyer organisation for important data, with evidence and a term "
                  "(staff)")
    async def grant_clearance(self, principal: Caller, order_config: Config,
                              data: JSONBody[ClearanceIn]) -> ClearanceOut:
        now = datetime.now(UTC)
        return clearance_out(await clearances.grant(
            principal, data.buyer_org_id, data.grade, valid_from=data.valid_from,
            valid_to=data.valid_to, evidence=data.evidence, today=order_config.today(now),
            now=now))

    @post("/{clearance_id:uuid}/revoke", opt=roles(Role.STAFF), status_code=200,
          summary="Revoke a buyer's clearance now (staff)")
    async def revoke_clearance(self, principal: Caller, clearance_id: FromPath[UUID],
                               data: JSONBody[RevocationIn]) -> ClearanceOut:
        return clearance_out(await clearances.revoke(principal, clearance_id,
                                                     reason=data.reason, now=datetime.now(UTC)))

    @get("/", opt=roles(Role.STAFF, Role.REGULATOR, Role.BUYER),
         summary="The clearance register: any buyer's (staff, regulator) or one's own (buyer)")
    async def list_clearances(self, principal: Caller,
                              buyer_org_id: FromQuery[UUID | None] = None,
                              ) -> list[ClearanceOut]:
        return [clearance_out(c) for c in await clearances.visible_to(principal, buyer_org_id)]
