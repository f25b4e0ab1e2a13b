"""Appending records to the verifiable log, inside the caller's database transaction.

The record and the change it describes commit together or not at all (ARCHITECTURE.md, "How a
trade flows"). Sealing leaves into a signed tree happens later, in the background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.entries import MAX_ENTRY_BYTES, MAX_SAFE_INTEGER, EntryError, JSONValue, LedgerRecord
from ledger.hashing import LEAF_HASH_PREFIX
from ledger.tables import LedgerLeaf

# RFC 8785 sorts an object's members, so "sequence" is always the entry's last one: the entry
# is the canonical form without its index, the index in decimal, and the closing brace.
_SEQUENCE_TAIL = b',"sequence":0}'
_LONGEST_INDEX_DIGITS = len(str(MAX_SAFE_INTEGER))

# One statement takes the next index (the head's row lock, held until the caller commits) and
# writes the leaf with its RFC 6962 hash, so the lock is held for one round trip fewer.
_APPEND = (
    "WITH head AS ("
    " INSERT INTO ledger_head (id, next_index) VALUES (1, 1)"
    " ON CONFLICT (id) DO UPDATE SET next_index = ledger_head.next_index + 1"
    " RETURNING next_index - 1 AS leaf_index),"
    " sequenced AS (SELECT leaf_index, $1::bytea || convert_to(leaf_index::text, 'UTF8')"
    " || $2::bytea AS entry FROM head)"
    " INSERT INTO ledger_leaves (leaf_index, kind, subject, entry, leaf_hash, recorded_at)"
    " SELECT leaf_index, $3, $4, entry, sha256($5::bytea || entry), $6 FROM sequenced"
    " RETURNING leaf_index, leaf_hash"
)


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
    transaction = LedgerLeaf._meta.db.current_transaction.get()
    if transaction is None:
        raise NotInTransactionError("append_record must run inside the caller's transaction")
    unsequenced = LedgerRecord(kind=kind, sequence=0,
                               recorded_at=recorded_at or datetime.now(UTC), actor=actor,
                               payload=payload)
    encoded = unsequenced.to_canonical_json()
    if not encoded.endswith(_SEQUENCE_TAIL):
        raise EntryError("the canonical entry does not end with its sequence")
    prefix = encoded[:-len(b"0}")]
    # Checked against the longest index the log can reach, before the index is known.
    if len(prefix) + _LONGEST_INDEX_DIGITS + 1 > MAX_ENTRY_BYTES:
        raise EntryError(f"entry is about {len(encoded)} bytes, above the "
                         f"{MAX_ENTRY_BYTES}-byte limit")
    # An upsert, so that an empty log needs no seeded row; either branch takes the row lock.
    # Straight on the transaction's connection: the statement is fixed, so there is no query
    # for Piccolo to compile on every leaf, nor a row to turn into a dict.
    row = await transaction.connection.fetchrow(
        _APPEND, prefix, b"}", kind, subject, LEAF_HASH_PREFIX, unsequenced.recorded_at)
    leaf_index = int(row["leaf_index"])
    return AppendedLeaf(leaf_index=leaf_index, leaf_hash=bytes(row["leaf_hash"]),
                        record=unsequenced.at_sequence(leaf_index))
