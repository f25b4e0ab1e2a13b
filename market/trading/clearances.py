"""The buyer clearance register (分类分级, MISSION §3): which buyer organisations may receive data
above the general grade.

Every buyer holds general clearance. Staff clear a buyer for important data on evidence (a
security assessment, a data-security undertaking) for a term, and may revoke the clearance;
both are ledgered in the same transaction, like free-use eligibility. Core data is never traded,
so nobody is cleared for it. Order placement (``POST /orders`` and ordering an offer, both
through ``orders.quote``) admits a product only when its grade is within the buyer's clearance
in force on the day (``check_buyer_may_receive``), and otherwise names the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.log import append_record
from listings.domains import Grade
from listings.errors import DomainValueError
from listings.product import buyer_may_receive
from market.accounts.model import OrganisationKind, Principal, Role
from market.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from market.trading.order_tables import connection

GRANTED_KIND = "trading.buyer_clearance_granted"
REVOKED_KIND = "trading.buyer_clearance_revoked"


@dataclass(frozen=True)
class Clearance:
    id: uuid.UUID
    buyer_org_id: uuid.UUID
    grade: Grade
    valid_from: date
    valid_to: date
    evidence: str
    granted_by: str
    granted_at: datetime
    leaf_index: int
    revoked_at: datetime | None
    revoked_by: str | None
    revocation_reason: str | None

    def in_force_on(self, day: date) -> bool:
        return self.revoked_at is None and self.valid_from <= day <= self.valid_to


def _clearance(row: Any) -> Clearance:
    return Clearance(
        id=row["id"], buyer_org_id=row["buyer_org_id"],
        grade=Grade.from_wire(row["grade"], "grade"),
        valid_from=row["valid_from"], valid_to=row["valid_to"], evidence=row["evidence"],
        granted_by=row["granted_by"], granted_at=row["granted_at"],
        leaf_index=row["leaf_index"], revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"], revocation_reason=row["revocation_reason"])


def clearance_on(clearances: Iterable[Clearance], day: date) -> Grade:
    """The highest grade the buyer is cleared for on ``day`` (general when none is in force)."""
    return max((c.grade for c in clearances if c.in_force_on(day)),
               key=lambda grade: grade.rank, default=Grade.GENERAL)


def refusal(grade: Grade, clearances: Iterable[Clearance], day: date) -> tuple[str, str] | None:
    """Why a buyer with ``clearances`` may not receive data of ``grade`` on ``day`` (a reason
    code and a sentence), or None when it may."""
    held = list(clearances)
    if buyer_may_receive(grade, clearance_on(held, day)):
        return None
    if grade is Grade.CORE:
        return "core_never_traded", "core data is never traded"
    covering = [c for c in held if c.grade.rank >= grade.rank]
    if any(c.revoked_at is None and c.valid_from > day for c in covering):
        return "clearance_not_yet_valid", f"the buyer's {grade.value} clearance starts later"
    if any(c.revoked_at is None for c in covering):
        return "clearance_expired", f"the buyer's {grade.value} clearance has expired"
    if covering:
        return "clearance_revoked", f"the buyer's {grade.value} clearance was revoked"
    return "no_clearance", f"the buyer is not cleared for {grade.value} data"


async def clearances_of(buyer_org_id: uuid.UUID) -> list[Clearance]:
    async with connection() as conn:
        rows = await conn.fetch(
            "SELECT * FROM trading_buyer_clearances WHERE buyer_org_id = $1 "
            "ORDER BY granted_at, id", buyer_org_id)
    return [_clearance(row) for row in rows]


async def clearance_in_force(buyer_org_id: uuid.UUID, on: date) -> Grade:
    return clearance_on(await clearances_of(buyer_org_id), on)


async def check_buyer_may_receive(buyer_org_id: uuid.UUID, grade: Grade, on: date) -> None:
    """Placement's grade rule: PermissionDeniedError naming the reason, or nothing."""
    if grade is Grade.GENERAL:
        return  # every buyer holds general clearance: no need to read the register
    refused = refusal(grade, await clearances_of(buyer_org_id), on)
    if refused is not None:
        reason, sentence = refused
        raise PermissionDeniedError(
            f"{grade.value} data is delivered only to buyers cleared for it: {sentence} "
            f"({reason})", field="product_id")


def _actor(principal: Principal) -> str:
    return f"{principal.role.value}:{principal.organisation_id}"


def _grade(value: str) -> Grade:
    try:
        grade = Grade.from_wire(value, "grade")
    except DomainValueError as error:
        raise InvalidInputError(error.message, field=error.field) from error
    if grade is Grade.GENERAL:
        raise InvalidInputError("general data needs no clearance: every buyer holds it",
                                field="grade")
    if grade is Grade.CORE:
        raise InvalidInputError("core data is never traded, so no buyer is cleared for it",
                                field="grade")
    return grade


async def grant(staff: Principal, buyer_org_id: uuid.UUID, grade: str, *, valid_from: date,
                valid_to: date, evidence: str, today: date, now: datetime) -> Clearance:
    """Staff clear an enterprise buyer for ``grade`` from ``valid_from`` to ``valid_to``
    inclusive, on ``evidence``; the row and its ledger record commit together."""
    cleared = _grade(grade)
    if valid_to < valid_from:
        raise InvalidInputError("the term must not end before it starts", field="valid_to")
    if valid_to < today:
        raise InvalidInputError(f"the term has already ended (today is {today})",
                                field="valid_to")
    evidence = evidence.strip()
    if not evidence:
        raise InvalidInputError("a clearance needs evidence", field="evidence")
    clearance_id = uuid.uuid4()
    actor = _actor(staff)
    async with connection() as conn:
        kind = await conn.fetchval("SELECT kind FROM organisations WHERE id = $1 FOR SHARE",
                                   buyer_org_id)
        if kind != OrganisationKind.ENTERPRISE.value:
            raise NotFoundError("no such buyer organisation", field="buyer_org_id")
        leaf = await append_record(
            GRANTED_KIND, actor=actor, subject=f"buyer_clearance:{clearance_id}",
            payload={"clearance_id": str(clearance_id), "buyer_org_id": str(buyer_org_id),
                     "grade": cleared.value, "valid_from": valid_from.isoformat(),
                     "valid_to": valid_to.isoformat(), "evidence": evidence},
            recorded_at=now)
        row = await conn.fetchrow(
            "INSERT INTO trading_buyer_clearances (id, buyer_org_id, grade, valid_from, "
            "valid_to, evidence, granted_by, granted_at, leaf_index) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
            clearance_id, buyer_org_id, cleared.value, valid_from, valid_to, evidence, actor,
            now, leaf.leaf_index)
    return _clearance(row)


async def revoke(staff: Principal, clearance_id: uuid.UUID, *, reason: str,
                 now: datetime) -> Clearance:
    """End a clearance now, once; orders placed from now on no longer count it."""
    actor = _actor(staff)
    async with connection() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM trading_buyer_clearances WHERE id = $1 FOR UPDATE", clearance_id)
        if row is None or row["revoked_at"] is not None:
            raise NotFoundError("no such clearance in force", field="clearance_id")
        leaf = await append_record(
            REVOKED_KIND, actor=actor, subject=f"buyer_clearance:{clearance_id}",
            payload={"clearance_id": str(clearance_id),
                     "buyer_org_id": str(row["buyer_org_id"]), "reason": reason},
            recorded_at=now)
        row = await conn.fetchrow(
            "UPDATE trading_buyer_clearances SET revoked_at = $2, revoked_by = $3, "
            "revocation_reason = $4, revocation_leaf_index = $5 WHERE id = $1 RETURNING *",
            clearance_id, now, actor, reason, leaf.leaf_index)
    return _clearance(row)


async def visible_to(principal: Principal, buyer_org_id: uuid.UUID | None) -> list[Clearance]:
    """Staff and the regulator see any buyer's clearances (all of them without a filter); a
    buyer sees its own organisation's only."""
    if principal.role is Role.BUYER:
        if buyer_org_id not in (None, principal.organisation_id):
            raise NotFoundError("no such buyer organisation", field="buyer_org_id")
        return await clearances_of(principal.organisation_id)
    if buyer_org_id is not None:
        return await clearances_of(buyer_org_id)
    async with connection() as conn:
        rows = await conn.fetch(
            "SELECT * FROM trading_buyer_clearances ORDER BY granted_at DESC, id LIMIT 500")
    return [_clearance(row) for row in rows]
