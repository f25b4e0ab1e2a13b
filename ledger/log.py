"""Appending records to the verifiable log, inside the caller's database transaction.

The record and the change it describes commit together or not at all (ARCHITECTURE.md, "How a
trade flows"). Sealing leaves into a signed tree happens later, in the background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.entries import JSONValue, LedgerRecord
from ledger.hashing import leaf_hash
from ledger.tables import LedgerHead, LedgerLeaf


class NotInTransactionError(RuntimeError):
    """Appending outside a transaction would let the record and its change part ways."""


@dataclass(frozen=True)
class AppendedLeaf:
    leaf_index: int
    leaf_hash: bytes
    record: LedgerRecord


async def append_record(kind: str, *, actor: str, subject: str,
                        payload: Mapping[str, JSONValue],
                        recorded_at: datetime | None = None) -> AppendedLeaf:
    """Append one record to the log in the current transaction and return its leaf index.

    Take this step last in a use case: from here to the commit, other appenders wait.
    """
    engine = LedgerLeaf._meta.db
    if engine.current_transaction.get() is None:
        raise NotInTransactionError("append_record must run inside the caller's transaction")
    # An upsert, so that an empty log needs no seeded row; either branch takes the row lock.
    rows = await LedgerHead.raw(
        "INSERT INTO ledger_head (id, next_index) VALUES (1, 1) "
        "ON CONFLICT (id) DO UPDATE SET next_index = ledger_head.next_index + 1 "
        "RETURNING next_index - 1 AS leaf_index").run()
    leaf_index = int(rows[0]["leaf_index"])
    record = LedgerRecord(kind=kind, sequence=leaf_index,
                          recorded_at=recorded_at or datetime.now(UTC), actor=actor,
                          payload=payload)
    entry = record.to_canonical_json()
    hashed = leaf_hash(entry)
    await LedgerLeaf.insert(LedgerLeaf(leaf_index=leaf_index, kind=kind, subject=subject,
                                       entry=entry, leaf_hash=hashed,
                                       recorded_at=record.recorded_at)).run()
    return AppendedLeaf(leaf_index=leaf_index, leaf_hash=hashed, record=record)
