"""Refusals of peers' claims are kept for staff, newest first, and a flood of one kind from
one claimed sender cannot fill the table: past the per-minute bound they are only logged."""

from __future__ import annotations

from market.peering.refusals import KEPT_PER_MINUTE, recent_refusals, record_refusal


async def test_a_flood_from_one_sender_is_bounded_per_minute(db: str) -> None:
    for number in range(KEPT_PER_MINUTE + 5):
        await record_refusal("shared_demand", f"unknown sender #{number}",
                             peer_origin="flood.test/ledger", evidence={"number": number})
    await record_refusal("shared_demand", "unknown sender", peer_origin="other.test/ledger",
                         evidence={})
    await record_refusal("checkpoint", "unknown origin", peer_origin="flood.test/ledger",
                         evidence={})
    await record_refusal("profile", "not a consortium member", peer_origin=None, evidence={})

    kept = await recent_refusals(limit=500)
    from_flood = [item for item in kept if (item.kind, item.peer_origin) ==
                  ("shared_demand", "flood.test/ledger")]
    assert len(from_flood) == KEPT_PER_MINUTE
    # The first ones are kept, with their evidence; the rest of the flood only logged.
    assert sorted(item.evidence["number"] for item in from_flood) == list(range(KEPT_PER_MINUTE))
    # Other senders and other kinds are kept as usual.
    assert [(item.kind, item.peer_origin) for item in kept[:3]] == [
        ("profile", None), ("checkpoint", "flood.test/ledger"),
        ("shared_demand", "other.test/ledger")]
    # Newest first, a page at a time.
    page = await recent_refusals(limit=2, before_id=kept[1].id)
    assert [item.id for item in page] == [kept[2].id, kept[3].id]
