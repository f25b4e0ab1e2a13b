"""Sealing: integrate newly appended leaves into the stored tree and sign a checkpoint.

One seal is one database transaction: read the leaves after the newest checkpoint, extend the
tiles, sign and store the new checkpoint. A crash anywhere rolls all of it back, so the next
seal simply starts again from the newest checkpoint (resumable, idempotent). Only one sealer
runs at a time: the others find the advisory lock taken and return at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.hashing import EMPTY_ROOT, leaf_hash
from ledger.note import NoteSigner
from ledger.tables import LedgerLeaf
from ledger.tree_store import (
    integrate,
    load_tiles,
    right_edge_tile_keys,
    root_from_tiles,
    save_tiles,
)

# pg_advisory_xact_lock key of the sealer: "ledger:seal" folded to a bigint constant.
SEAL_LOCK_KEY = 0x6C65_6467_6572_0001
# A seal this large still commits in well under a second; a backlog is worked off over several.
DEFAULT_MAX_LEAVES_PER_SEAL = 50_000


class SealingError(RuntimeError):
    """A leaf cannot be sealed (its stored hash does not match its entry)."""


@dataclass(frozen=True)
class SealResult:
    tree_size: int
    root_hash: bytes
    leaves_added: int
    # The new signed checkpoint, or None when there was nothing new to seal.
    checkpoint_note: str | None


async def seal(signer: NoteSigner, *, max_leaves: int = DEFAULT_MAX_LEAVES_PER_SEAL,
               wait: bool = False) -> SealResult | None:
    """Seal the leaves appended since the newest checkpoint (at most `max_leaves`).

    Returns None when another sealer holds the lock, unless `wait`: then it waits for that
    sealer and seals whatever it left. The checkpoint's origin is the signer's key name.
    """
    engine = LedgerLeaf._meta.db
    async with engine.transaction() as transaction:
        connection = transaction.connection
        if wait:
            await connection.execute("SELECT pg_advisory_xact_lock($1)", SEAL_LOCK_KEY)
        elif not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)",
                                           SEAL_LOCK_KEY):
            return None
        return await _seal_locked(connection, signer, max_leaves)


async def _seal_locked(connection: Any, signer: NoteSigner, max_leaves: int) -> SealResult:
    latest = await connection.fetchrow(
        "SELECT tree_size, root_hash FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1")
    old_size = 0 if latest is None else int(latest["tree_size"])
    rows = await connection.fetch(
        "SELECT leaf_index, entry, leaf_hash FROM ledger_leaves "
        "WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index",
        old_size, old_size + max_leaves)
    new_hashes: list[bytes] = []
    for expected_index, row in enumerate(rows, start=old_size):
        if row["leaf_index"] != expected_index:
            # Appenders commit in index order (ledger.log), so a hole means a leaf went missing;
            # sealing past it would publish a tree that hides the loss.
            raise SealingError(f"leaf {expected_index} is missing; refusing to seal past it")
        hashed = leaf_hash(bytes(row["entry"]))
        if hashed != bytes(row["leaf_hash"]):
            raise SealingError(f"leaf {expected_index}: stored leaf hash does not match its entry")
        new_hashes.append(hashed)
    if latest is not None and not new_hashes:
        return SealResult(old_size, bytes(latest["root_hash"]), 0, None)
    new_size = old_size + len(new_hashes)
    partial_tiles = await load_tiles(connection, right_edge_tile_keys(old_size))
    changed = integrate(old_size, new_hashes, partial_tiles)
    root = root_from_tiles({**partial_tiles, **changed}, new_size) if new_size else EMPTY_ROOT
    note = sign_checkpoint(Checkpoint(signer.name, new_size, root), signer)
    await save_tiles(connection, changed)
    await connection.execute(
        "INSERT INTO ledger_checkpoints (tree_size, root_hash, note) VALUES ($1, $2, $3)",
        new_size, root, note)
    return SealResult(new_size, root, len(new_hashes), note)


async def seal_all(signer: NoteSigner, *, max_leaves: int = DEFAULT_MAX_LEAVES_PER_SEAL,
                   wait: bool = False) -> SealResult | None:
    """Seal until the backlog is worked off; None when another sealer holds the lock."""
    result = await seal(signer, max_leaves=max_leaves, wait=wait)
    while result is not None and result.leaves_added == max_leaves:
        result = await seal(signer, max_leaves=max_leaves, wait=wait)
    return result
