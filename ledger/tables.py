"""Piccolo tables of the ledger (DDL and append-only triggers: ledger/piccolo_migrations)."""

from piccolo.columns import BigInt, Bytea, Timestamptz, Varchar
from piccolo.table import Table


class LedgerHead(Table, tablename="ledger_head"):
    """One row: the next leaf index. Appending takes its row lock until the caller commits, so
    leaf indexes are gap-free and committed in index order (a sealer never sees a hole)."""

    id = BigInt(primary_key=True)
    next_index = BigInt()


class LedgerLeaf(Table, tablename="ledger_leaves"):
    leaf_index = BigInt(primary_key=True)
    kind = Varchar(length=64)
    subject = Varchar(length=200)
    entry = Bytea()
    leaf_hash = Bytea()
    recorded_at = Timestamptz()
