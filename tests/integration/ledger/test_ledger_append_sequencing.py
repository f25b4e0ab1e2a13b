"""The database writes each leaf's entry and hash in the statement that assigns its index: the
bytes must be exactly the record's RFC 8785 form with that index, whatever its length."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.entries import MAX_ENTRY_BYTES, EntryError, LedgerRecord
from ledger.hashing import leaf_hash
from ledger.log import append_record
from ledger.tables import LedgerHead, LedgerLeaf
from market.database import current_engine


@pytest.mark.parametrize("next_index", [0, 9, 10, 123_456_789_012])
async def test_the_stored_entry_is_the_canonical_record_at_its_index(db: str,
                                                                     next_index: int) -> None:
    await LedgerHead.raw("INSERT INTO ledger_head (id, next_index) VALUES (1, {})",
                         next_index).run()
    moment = datetime(2026, 11, 24, 15, 0, 0, 123_456, tzinfo=UTC)
    payload = {"名称": "交通\u2028数据", "amount_minor": 1999, "nested": {"b": [1, None, True]}}
    async with current_engine().transaction():
        appended = await append_record("test.sequenced", actor="user:1", subject="thing:1",
                                       payload=payload, recorded_at=moment)
    expected = LedgerRecord(kind="test.sequenced", sequence=next_index, recorded_at=moment,
                            actor="user:1", payload=payload).to_canonical_json()
    stored = await LedgerLeaf.select().where(LedgerLeaf.leaf_index == next_index).first().run()
    assert stored is not None
    assert appended.leaf_index == next_index
    assert stored["entry"] == expected
    assert stored["leaf_hash"] == leaf_hash(expected) == appended.leaf_hash
    assert appended.record.to_canonical_json() == expected


async def test_an_entry_too_long_for_any_index_is_refused_before_writing(db: str) -> None:
    async with current_engine().transaction():
        with pytest.raises(EntryError, match="limit"):
            await append_record("test.big", actor="a", subject="s",
                                payload={"blob": "x" * MAX_ENTRY_BYTES})
    assert await LedgerLeaf.count() == 0
