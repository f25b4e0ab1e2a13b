"""Free-use eligibility: granted with evidence and a term, revocable once, ledgered."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from ledger.tables import LedgerLeaf
from settlement import eligibility_store
from settlement.caps import Eligibility, Purpose
from settlement.errors import IneligibleForFreeUseError, UnknownRecordError

GOVERNANCE = Purpose.PUBLIC_GOVERNANCE


def grant_for(buyer: str = "buyer-1") -> Eligibility:
    return Eligibility(buyer, frozenset({GOVERNANCE}), date(2026, 1, 1), date(2026, 12, 31),
                       "市数据局函〔2026〕12号")


async def test_grant_check_and_revoke(db: str) -> None:
    stored = await eligibility_store.grant(grant_for(), granted_by="staff:1")
    await eligibility_store.check_buyer_free_use("buyer-1", GOVERNANCE, date(2026, 6, 1))
    for buyer, purpose, day, reason in (
        ("buyer-1", GOVERNANCE, date(2027, 1, 1), "expired"),
        ("buyer-1", GOVERNANCE, date(2025, 12, 31), "not_yet_valid"),
        ("buyer-1", Purpose.PUBLIC_WELFARE, date(2026, 6, 1), "not_eligible"),
        ("buyer-2", GOVERNANCE, date(2026, 6, 1), "not_eligible"),
        ("buyer-1", Purpose.INDUSTRY_DEVELOPMENT, date(2026, 6, 1), "purpose_is_paid"),
    ):
        with pytest.raises(IneligibleForFreeUseError) as caught:
            await eligibility_store.check_buyer_free_use(buyer, purpose, day)
        assert caught.value.reason == reason
    await eligibility_store.revoke(stored.id, revoked_by="staff:2", reason="evidence withdrawn")
    with pytest.raises(IneligibleForFreeUseError):
        await eligibility_store.check_buyer_free_use("buyer-1", GOVERNANCE, date(2026, 6, 1))
    with pytest.raises(UnknownRecordError):
        await eligibility_store.revoke(stored.id, revoked_by="staff:2", reason="again")
    history = await eligibility_store.for_buyer("buyer-1", include_revoked=True)
    assert history[0].revoked_at is not None
    assert await LedgerLeaf.count() == 2


async def test_grants_are_history_in_the_database(db: str) -> None:
    await eligibility_store.grant(grant_for(), granted_by="staff:1")
    connection = await asyncpg.connect(db)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("UPDATE free_use_eligibilities SET valid_to = '2099-01-01'")
    finally:
        await connection.close()
