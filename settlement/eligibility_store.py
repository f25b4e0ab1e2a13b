"""Free-use eligibility (有条件无偿): staff grant it with evidence and a term, may revoke it, and
the orders use case checks it when a buyer claims a free purpose. Grants and revocations are
ledgered in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.log import append_record
from settlement.caps import Eligibility, Purpose, check_free_use
from settlement.errors import UnknownRecordError
from settlement.tables import transaction_connection

ELIGIBILITY_GRANTED = "settlement.eligibility_granted"
ELIGIBILITY_REVOKED = "settlement.eligibility_revoked"


@dataclass(frozen=True, slots=True)
class StoredEligibility:
    id: uuid.UUID
    eligibility: Eligibility
    granted_by: str
    granted_at: datetime
    revoked_at: datetime | None


def _stored(row: Any) -> StoredEligibility:
    return StoredEligibility(
        id=row["id"],
        eligibility=Eligibility(
            buyer_org_id=row["buyer_org_id"],
            purposes=frozenset(Purpose(p) for p in row["purposes"]),
            valid_from=row["valid_from"],
            valid_to=row["valid_to"],
            evidence=row["evidence"],
        ),
        granted_by=row["granted_by"],
        granted_at=row["granted_at"],
        revoked_at=row["revoked_at"],
    )


async def grant(eligibility: Eligibility, *, granted_by: str) -> StoredEligibility:
    async with transaction_connection() as connection:
        row = await connection.fetchrow(
            "INSERT INTO free_use_eligibilities (id, buyer_org_id, purposes, valid_from, "
            "valid_to, evidence, granted_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
            uuid.uuid4(), eligibility.buyer_org_id, sorted(eligibility.purposes),
            eligibility.valid_from, eligibility.valid_to, eligibility.evidence, granted_by)
        stored = _stored(row)
        await append_record(
            ELIGIBILITY_GRANTED, actor=granted_by, subject=f"eligibility:{stored.id}",
            payload={
                "eligibility_id": str(stored.id),
                "buyer_org_id": eligibility.buyer_org_id,
                "purposes": sorted(eligibility.purposes),
                "valid_from": eligibility.valid_from.isoformat(),
                "valid_to": eligibility.valid_to.isoformat(),
                "evidence": eligibility.evidence,
            })
        return stored


async def revoke(eligibility_id: uuid.UUID, *, revoked_by: str, reason: str) -> StoredEligibility:
    """End a grant now (once); a revoked grant no longer supports free use."""
    async with transaction_connection() as connection:
        row = await connection.fetchrow(
            "UPDATE free_use_eligibilities SET revoked_at = now(), revoked_by = $2, "
            "revocation_reason = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING *",
            eligibility_id, revoked_by, reason)
        if row is None:
            raise UnknownRecordError(f"no active eligibility {eligibility_id}",
                                     field="eligibility_id")
        await append_record(
            ELIGIBILITY_REVOKED, actor=revoked_by, subject=f"eligibility:{eligibility_id}",
            payload={"eligibility_id": str(eligibility_id), "reason": reason})
        return _stored(row)


async def for_buyer(buyer_org_id: str, *, include_revoked: bool = False) -> list[StoredEligibility]:
    async with transaction_connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM free_use_eligibilities WHERE buyer_org_id = $1 "
            "AND ($2 OR revoked_at IS NULL) ORDER BY valid_from, id",
            buyer_org_id, include_revoked)
    return [_stored(row) for row in rows]


async def check_buyer_free_use(buyer_org_id: str, purpose: Purpose, on: date) -> None:
    """Allow free use, or raise IneligibleForFreeUseError with the reason (not_eligible,
    not_yet_valid, expired, purpose_is_paid). Revoked grants do not count."""
    grants = [stored.eligibility for stored in await for_buyer(buyer_org_id)]
    check_free_use(purpose, grants, on, buyer_org_id=buyer_org_id)
