"""The peering records as the ledger should have logged them, for reconciliation: configured
peers, their suspension and reactivation, and recognised codes (with their withdrawal). Queries
run on the reconciliation's snapshot transaction (Piccolo binds them to it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ledger.entries import JSONValue
from ledger.reconcile import ExpectedRecord
from market.peering.tables import PeerRow, RecognitionRow

PEER_CONFIGURED = "peering.peer_configured"
PEER_STATE_CHANGED = "peering.peer_state_changed"
CODE_RECOGNISED = "peering.code_recognised"
RECOGNITION_WITHDRAWN = "peering.recognition_withdrawn"


class PeerRecords:
    """A peer's newest configuration leaf says what its row says now; the leaf also tells
    whether a key was rotated, which the row does not keep."""

    name = "peers"
    kinds = frozenset({PEER_CONFIGURED})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        for row in await PeerRow.raw("SELECT * FROM peering_peers ORDER BY id").run():
            payload: dict[str, JSONValue] = {
                "origin": row["origin"], "name": row["name"], "vkey": row["vkey"],
                "chain_address": row["chain_address"], "api": row["api_base_url"]}
            # By subject, not leaf index: a peer configured again leaves its earlier leaves as
            # the row's history.
            yield ExpectedRecord(row["origin"], PEER_CONFIGURED, payload, exact=False,
                                 actor=row["configured_by"])


class PeerStateRecords:
    """A peer suspended or reactivated: the newest of its state-change leaves says the state
    its row has now, changed by whom the row names; the earlier ones are its history."""

    name = "peer_states"
    kinds = frozenset({PEER_STATE_CHANGED})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        rows = await PeerRow.raw(
            "SELECT origin, state, state_changed_by FROM peering_peers "
            "WHERE state_changed_by IS NOT NULL ORDER BY id").run()
        for row in rows:
            yield ExpectedRecord(row["origin"], PEER_STATE_CHANGED,
                                 {"origin": row["origin"], "state": row["state"]},
                                 actor=row["state_changed_by"])


class RecognitionRecords:
    """Each recognised code's leaf with its evidence, and its withdrawal's leaf if any."""

    name = "recognitions"
    kinds = frozenset({CODE_RECOGNISED, RECOGNITION_WITHDRAWN})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        rows = await RecognitionRow.raw(
            "SELECT * FROM peering_recognitions ORDER BY recognised_at, code").run()
        for row in rows:
            yield ExpectedRecord(row["code"], CODE_RECOGNISED, {
                "code": row["code"], "peer_origin": row["peer_origin"],
                "peer_leaf_index": row["peer_leaf_index"],
                "peer_leaf_hash": bytes(row["peer_leaf_hash"]).hex(),
                "peer_tree_size": row["peer_tree_size"],
                "peer_root_hash": bytes(row["peer_root_hash"]).hex(),
                "anchored_tree_size": row["anchored_tree_size"],
                "product_id": str(row["product_id"])}, leaf_index=row["leaf_index"])
            if row["withdrawal_leaf_index"] is not None:
                # The leaf also lists the products delisted, which the row does not keep.
                yield ExpectedRecord(row["code"], RECOGNITION_WITHDRAWN, {
                    "code": row["code"], "reason": row["withdrawn_reason"]},
                    leaf_index=row["withdrawal_leaf_index"], exact=False)
