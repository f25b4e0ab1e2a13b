"""Piccolo tables of peering (DDL, constraints and indexes: market/piccolo_migrations).

The queries live in ``market.peering.directory``, ``refusals`` and ``recognitions``; these
classes register the tables with Piccolo and give those modules a handle on the engine.
"""

from piccolo.columns import JSONB, UUID, BigInt, Bytea, Text, Timestamptz, Varchar
from piccolo.table import Table


class PeerRow(Table, tablename="peering_peers"):
    id = BigInt(primary_key=True)
    origin = Varchar(length=255, unique=True)
    name = Varchar(length=200)
    vkey = Text()
    chain_address = Varchar(length=42, unique=True)
    api_base_url = Varchar(length=500)
    code_issuer = Varchar(length=16, null=True)
    state = Varchar(length=16)
    profile_note = Text()
    configured_by = Varchar(length=200)
    leaf_index = BigInt()
    configured_at = Timestamptz()
    # Who last suspended or reactivated the peer; None while its state never changed.
    state_changed_by = Varchar(length=200, null=True)


class RefusalRow(Table, tablename="peering_refusals"):
    id = BigInt(primary_key=True)
    kind = Varchar(length=64)
    peer_origin = Varchar(length=255, null=True)
    reason = Text()
    evidence = JSONB()
    refused_at = Timestamptz()


class RecognitionRow(Table, tablename="peering_recognitions"):
    code = Varchar(length=40, primary_key=True)
    peer_origin = Varchar(length=255)
    product_id = UUID()
    operator_org_id = UUID()
    peer_leaf_index = BigInt()
    peer_leaf_hash = Bytea()
    peer_tree_size = BigInt()
    peer_root_hash = Bytea()
    anchored_tree_size = BigInt()
    checkpoint_note = Text()
    leaf_index = BigInt()
    state = Varchar(length=16)
    withdrawn_reason = Text()
    withdrawal_leaf_index = BigInt(null=True)
    recognised_at = Timestamptz()
    checked_at = Timestamptz()


PEERING_TABLES = [PeerRow, RefusalRow, RecognitionRow]
