"""Appending inside the caller's transaction: gap-free indexes, atomic with the caller's
change, and append-only in the database itself."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ledger.entries import LedgerRecord
from ledger.hashing import leaf_hash
from ledger.log import NotInTransactionError, append_record
from ledger.tables import LedgerLeaf
from market.database import current_engine


async def test_append_returns_consecutive_indexes_and_stores_the_canonical_entry(db: str) -> None:
    engine = current_engine()
    async with engine.transaction():
        first = await append_record("test.created", actor="user:1", subject="thing:1",
                                    payload={"name": "气象", "amount_minor": 100})
        second = await append_record("test.changed", actor="user:1", subject="thing:1",
                                     payload={"name": "交通"})
    assert (first.leaf_index, second.leaf_index) == (0, 1)
    stored = await LedgerLeaf.select().order_by(LedgerLeaf.leaf_index).run()
    assert [row["leaf_index"] for row in stored] == [0, 1]
    record = LedgerRecord.from_canonical_json(stored[0]["entry"])
    assert record.sequence == 0
    assert record.payload["name"] == "气象"
    assert stored[0]["leaf_hash"] == leaf_hash(stored[0]["entry"])


async def test_a_rolled_back_append_leaves_no_gap(db: str) -> None:
    engine = current_engine()

    async def failing_use_case() -> None:
        async with engine.transaction():
            await append_record("test.created", actor="a", subject="s", payload={})
            raise RuntimeError("caller failed")

    with pytest.raises(RuntimeError, match="caller failed"):
        await failing_use_case()
    async with engine.transaction():
        appended = await append_record("test.created", actor="a", subject="s", payload={})
    assert appended.leaf_index == 0
    assert await LedgerLeaf.count() == 1


async def test_append_outside_a_transaction_is_refused(db: str) -> None:
    with pytest.raises(NotInTransactionError):
        await append_record("test.created", actor="a", subject="s", payload={})
    assert await LedgerLeaf.count() == 0


async def test_concurrent_appends_are_gap_free(db: str) -> None:
    engine = current_engine()

    async def one(number: int) -> int:
        async with engine.transaction():
            appended = await append_record("test.created", actor="a", subject=f"s:{number}",
                                           payload={"n": number})
            return appended.leaf_index

    indexes = await asyncio.gather(*(one(number) for number in range(40)))
    assert sorted(indexes) == list(range(40))


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_leaves SET kind = 'forged'",
    "DELETE FROM ledger_leaves",
])
async def test_leaves_are_append_only_in_the_database(db: str, statement: str) -> None:
    engine = current_engine()
    async with engine.transaction():
        await append_record("test.created", actor="a", subject="s", payload={})
    connection = await asyncpg.connect(db)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(statement)
    finally:
        await connection.close()
    assert await LedgerLeaf.count() == 1
