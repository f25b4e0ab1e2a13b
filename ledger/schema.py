"""Piccolo tables of the sealed tree, checkpoints, chain outbox and reconciliations.

DDL, constraints and the append-only / grow-only triggers live in ledger/piccolo_migrations;
the modules that read and write these tables use SQL on the transaction's connection, since
sealing and reconciliation move many rows at a time.
"""

from piccolo.columns import JSONB, BigInt, Bytea, Integer, SmallInt, Text, Timestamptz, Varchar
from piccolo.table import Table


class LedgerTile(Table, tablename="ledger_tiles"):
    """A C2SP tlog-tiles tile: `width` hashes of level `level`, concatenated."""

    level = SmallInt()
    tile_index = BigInt()
    width = SmallInt()
    hashes = Bytea()


class LedgerCheckpoint(Table, tablename="ledger_checkpoints"):
    tree_size = BigInt(primary_key=True)
    root_hash = Bytea()
    note = Text()
    signed_at = Timestamptz()


class LedgerChainTransaction(Table, tablename="ledger_chain_transactions"):
    purpose = Varchar(length=32)
    sender = Varchar(length=42)
    nonce = BigInt()
    tx_hash = Bytea()
    raw_transaction = Bytea()
    status = Varchar(length=16)
    attempts = Integer()
    last_error = Text(null=True)
    block_number = BigInt(null=True)
    gas_used = BigInt(null=True)
    created_at = Timestamptz()
    confirmed_at = Timestamptz(null=True)


class LedgerAnchor(Table, tablename="ledger_anchors"):
    tree_size = BigInt()
    root_hash = Bytea()
    transaction_id = BigInt()
    created_at = Timestamptz()


class LedgerCodeRegistration(Table, tablename="ledger_code_registrations"):
    code = Varchar(length=128, primary_key=True)
    leaf_index = BigInt()
    leaf_hash = Bytea()
    status = Varchar(length=16)
    transaction_id = BigInt(null=True)
    conflict_exchange = Varchar(length=42, null=True)
    queued_at = Timestamptz()


class LedgerReconciliation(Table, tablename="ledger_reconciliations"):
    started_at = Timestamptz()
    finished_at = Timestamptz()
    trigger = Varchar(length=16)
    tree_size = BigInt()
    leaves_checked = BigInt()
    discrepancy_count = Integer()
    discrepancies = JSONB()


class LedgerAlert(Table, tablename="ledger_alerts"):
    raised_at = Timestamptz()
    reconciliation_id = BigInt()
    summary = Text()
