"""The clearance rule, pure: which grade a buyer holds on a day and why a grade is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from listings.domains import Grade
from market.trading.clearances import Clearance, clearance_on, refusal

DAY = date(2026, 11, 24)


def cleared(valid_from: date, valid_to: date, *, revoked: bool = False) -> Clearance:
    return Clearance(
        id=uuid.uuid4(), buyer_org_id=uuid.uuid4(), grade=Grade.IMPORTANT,
        valid_from=valid_from, valid_to=valid_to, evidence="评估报告", granted_by="staff:x",
        granted_at=datetime.now(UTC), leaf_index=1,
        revoked_at=datetime.now(UTC) if revoked else None,
        revoked_by="staff:x" if revoked else None,
        revocation_reason="撤销" if revoked else None)


def test_general_is_held_by_everyone_and_core_by_nobody() -> None:
    assert clearance_on([], DAY) is Grade.GENERAL
    assert refusal(Grade.GENERAL, [], DAY) is None
    in_force = [cleared(DAY, DAY)]
    assert clearance_on(in_force, DAY) is Grade.IMPORTANT
    assert refusal(Grade.IMPORTANT, in_force, DAY) is None
    refused = refusal(Grade.CORE, in_force, DAY)
    assert refused is not None
    assert refused[0] == "core_never_traded"


def test_refusals_name_the_most_specific_reason() -> None:
    def reason(*held: Clearance) -> str | None:
        refused = refusal(Grade.IMPORTANT, held, DAY)
        return None if refused is None else refused[0]

    assert reason() == "no_clearance"
    assert reason(cleared(date(2026, 12, 1), date(2026, 12, 31))) == "clearance_not_yet_valid"
    assert reason(cleared(date(2026, 1, 1), date(2026, 11, 23))) == "clearance_expired"
    assert reason(cleared(date(2026, 1, 1), date(2026, 12, 31), revoked=True)) \
        == "clearance_revoked"
    # The last day of the term still counts (closed ranges, "执行至…").
    assert reason(cleared(date(2026, 1, 1), DAY)) is None
