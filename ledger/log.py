"""Appending records to the verifiable log, inside the caller's database transaction.

The record and the change it describes commit together or not at all (ARCHITECTURE.md, "How a
trade flows"). Sealing leaves into a signed tree happens later, in the background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.canonical import MAX_SAFE_INTEGER
from ledger.entries import MAX_ENTRY_BYTES, EntryError, JSONValue, LedgerRecord
from ledger.hashing import LEAF_HASH_PREFIX
from ledger.tables import LedgerLeaf

# RFC 8785 sorts an object's members, so "sequence" is always the entry's last one: the entry
# is the canonical form without its index, the index in decimal, and the closing brace.
_SEQUENCE_TAIL = b',"sequence":0}'
_LONGEST_INDEX_DIGITS = len(str(MAX_SAFE_INTEGER))

# ledger_append (ledger/piccolo_migrations/ledger_2026_11_25t11_00_00_000000.py) takes the next
# index under the head's row lock, held until the caller commits, and writes the leaf with its
# RFC 6962 hash, in one round trip.
_APPEND = "SELECT leaf_index, leaf_hash FROM ledger_append($1::ledger_entry)"


class NotInTransactionError(RuntimeError):
    """Appending outside a transaction would let the record and its change part ways."""


@dataclass(frozen=True)
class AppendedLeaf:
    leaf_index: int
    leaf_hash: bytes
    record: LedgerRecord


@dataclass(frozen=True)
class PreparedEntry:
    """A record ready to append, as the ``ledger_entry`` value that ``ledger_append`` takes.

    A use case whose own database function ends in ``ledger_append`` passes ``argument`` on,
    so that the leaf costs no round trip of its own; ``appended`` then names the leaf."""

    record: LedgerRecord  # at sequence 0: the index is taken under the head's lock
    argument: tuple[str, str, bytes, bytes, bytes, datetime]

    def appended(self, leaf_index: int, leaf_hash: bytes) -> AppendedLeaf:
        return AppendedLeaf(leaf_index=leaf_index, leaf_hash=leaf_hash,
                            record=self.record.at_sequence(leaf_index))


def prepare_entry(kind: str, *, actor: str, subject: str, payload: Mapping[str, JSONValue],
                  recorded_at: datetime | None = None) -> PreparedEntry:
    """Validate and encode a record for ``ledger_append``; EntryError if it cannot be logged."""
    unsequenced = LedgerRecord(kind=kind, sequence=0,
                               recorded_at=recorded_at or datetime.now(UTC), actor=actor,
                               payload=payload)
    encoded = unsequenced.to_canonical_json()
    if not encoded.endswith(_SEQUENCE_TAIL):
        raise EntryError("the canonical entry does not end with its sequence")
    head = encoded[:-len(b"0}")]
    # Checked against the longest index the log can reach, before the index is known.
    if len(head) + _LONGEST_INDEX_DIGITS + 1 > MAX_ENTRY_BYTES:
        raise EntryError(f"entry is about {len(encoded)} bytes, above the "
                         f"{MAX_ENTRY_BYTES}-byte limit")
    return PreparedEntry(record=unsequenced, argument=(
        kind, subject, head, b"}", LEAF_HASH_PREFIX, unsequenced.recorded_at))


async def append_record(kind: str, *, actor: str, subject: str,
                        payload: Mapping[str, JSONValue],
                        recorded_at: datetime | None = None) -> AppendedLeaf:
    """Append one record to the log in the current transaction and return its leaf index.

    Take this step last in a use case: from here to the commit, other appenders wait.
    """
    return await append_prepared(prepare_entry(kind, actor=actor, subject=subject,
                                               payload=payload, recorded_at=recorded_at))


async def append_prepared(prepared: PreparedEntry) -> AppendedLeaf:
    """``append_record`` for a record prepared already."""
    transaction = LedgerLeaf._meta.db.current_transaction.get()
    if transaction is None:
        raise NotInTransactionError("append_record must run inside the caller's transaction")
    # Straight on the transaction's connection: the statement is fixed, so there is no query
    # for Piccolo to compile on every leaf, nor a row to turn into a dict.
    row = await transaction.connection.fetchrow(_APPEND, prepared.argument)
    return prepared.appended(int(row["leaf_index"]), bytes(row["leaf_hash"]))
