"""A peer's suspension and reactivation against their leaves: the newest state-change leaf must
say the state the peer's row has now, changed by whom the row names; the earlier ones are its
history, and a change the row no longer admits to leaves its leaves unclaimed."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.reconcile import DiscrepancyKind
from market.peering import directory
from market.peering.ledger_records import PeerStateRecords
from market.peering.tables import PeerRow
from tests.integration.market.reconcile_setup import findings, run, tamper

ORIGIN = "exchange-a.test/ledger"
WHERE = f"peer_states {ORIGIN}"
SOURCES = [PeerStateRecords()]


async def configured_peer() -> int:
    """A peer as configuring it leaves its row (its own leaf belongs to another source)."""
    rows = await PeerRow.raw(
        "INSERT INTO peering_peers (origin, name, vkey, chain_address, api_base_url, state, "
        "profile_note, configured_by, leaf_index, configured_at) VALUES ({}, 'A数据交易所', "
        "'vkey', '0x00000000000000000000000000000000000000a1', 'https://a.test', 'active', "
        "'note', 'staff:s1', 0, {}) RETURNING id", ORIGIN, datetime.now(UTC)).run()
    return int(rows[0]["id"])


async def test_suspension_and_reactivation_reconcile_and_rewrites_show(db: str) -> None:
    peer_id = await configured_peer()
    assert (await run(SOURCES)).discrepancies == []  # never changed: nothing to claim
    await directory.set_state(peer_id, "suspended", actor="staff:s1")
    assert (await run(SOURCES)).discrepancies == []
    await directory.set_state(peer_id, "active", actor="staff:s2")
    assert (await run(SOURCES)).discrepancies == []  # the suspension is the row's history

    await tamper(db, "UPDATE peering_peers SET state = 'suspended' WHERE origin = $1", ORIGIN)
    assert findings(await run(SOURCES)) == [(DiscrepancyKind.RECORD_CHANGED, WHERE)]
    await tamper(db, "UPDATE peering_peers SET state = 'active', state_changed_by = 'staff:s9' "
                     "WHERE origin = $1", ORIGIN)
    assert findings(await run(SOURCES)) == [(DiscrepancyKind.RECORD_CHANGED, WHERE)]
    # The row denies any change: both state-change leaves are claimed by no record.
    await tamper(db, "UPDATE peering_peers SET state_changed_by = NULL WHERE origin = $1", ORIGIN)
    assert findings(await run(SOURCES)) == [(DiscrepancyKind.RECORD_MISSING, WHERE)]
