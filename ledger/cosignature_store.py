"""Cosignatures peers' witnesses gave this log's checkpoints, and the checkpoints served with
them: c2sp.org/tlog-witness has the log add the cosignature lines it got to its own view of the
checkpoint, after its own signature, so a client holding a witness's key can check them."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.cosignature import Cosignature, CosignatureVerifier
from ledger.serving import LedgerLookupError, StoredCheckpoint
from ledger.tables import LedgerLeaf

# A checkpoint (the newest, or the one of the given size) with its note followed by its
# cosignature lines in the order they arrived.
_COSIGNED_CHECKPOINT = (
    "SELECT c.tree_size, c.root_hash, c.signed_at, c.note || coalesce(("
    "SELECT string_agg(s.signature_line, '' ORDER BY s.id) FROM ledger_cosignatures s "
    "WHERE s.tree_size = c.tree_size), '') AS note "
    "FROM ledger_checkpoints c WHERE {}::bigint IS NULL OR c.tree_size = {} "
    "ORDER BY c.tree_size DESC LIMIT 1")


async def store_cosignatures(tree_size: int, cosignatures: Sequence[Cosignature]) -> int:
    """Keep verified cosignatures of checkpoint `tree_size`; returns how many were new."""
    added = 0
    async with LedgerLeaf._meta.db.transaction() as transaction:
        for cosignature in cosignatures:
            result = await transaction.connection.execute(
                "INSERT INTO ledger_cosignatures (tree_size, cosigner_name, key_id, cosigned_at, "
                "signature_line) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (tree_size, cosigner_name, key_id) DO NOTHING",
                tree_size, cosignature.name, cosignature.key_id, cosignature.timestamp,
                cosignature.line)
            added += int(result.split()[-1])
    return added


async def latest_cosigned_size(verifier: CosignatureVerifier) -> int:
    """The largest of this log's tree sizes that `verifier`'s witness cosigned (0: none)."""
    size = await LedgerLeaf.raw(
        "SELECT coalesce(max(tree_size), 0) AS size FROM ledger_cosignatures "
        "WHERE cosigner_name = {} AND key_id = {}", verifier.name, verifier.key_id).run()
    return int(size[0]["size"])


async def cosigned_checkpoint(tree_size: int | None = None) -> StoredCheckpoint:
    """The checkpoint of `tree_size` (None: the newest) with every cosignature received for it."""
    rows = await LedgerLeaf.raw(_COSIGNED_CHECKPOINT, tree_size, tree_size).run()
    if not rows:
        raise LedgerLookupError("the log has not signed a checkpoint yet" if tree_size is None
                                else f"the log signed no checkpoint of size {tree_size}")
    row = rows[0]
    return StoredCheckpoint(int(row["tree_size"]), bytes(row["root_hash"]), row["note"],
                            row["signed_at"])
