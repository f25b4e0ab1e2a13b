"""Read models of the public log: checkpoint, tiles, entry bundles, entries with proofs.

Everything served is bounded by the newest signed checkpoint: a tile, bundle or proof for a
tree size no checkpoint covers is "not found", so a client never sees data that no signature
commits to. Tiles only grow (a database trigger), so the hashes a checkpoint covered are the
prefix of whatever the tile row holds now, and any slice served once is served identically
forever — which is why tlog-tiles lets tiles be cached as immutable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.hashing import HASH_SIZE_BYTES
from ledger.proof_cache import ProofCache, TileHashMissingError, tile_key_of_node
from ledger.proofs import ProofError, consistency_node_ids, inclusion_node_ids, verify_inclusion
from ledger.tables import LedgerLeaf
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileKey, TileRef, encode_entry_bundle
from ledger.tree_store import TreeStoreError, load_tiles, read_nodes, root_at


class LedgerLookupError(LookupError):
    """The log holds no such entry, tile or tree size (under its newest checkpoint)."""


class LedgerQueryError(ValueError):
    """A request names an impossible range; `field` names the offending parameter."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    note: str
    signed_at: datetime


@dataclass(frozen=True)
class EntryWithProof:
    leaf_index: int
    entry: bytes
    leaf_hash: bytes
    checkpoint: StoredCheckpoint
    inclusion_proof: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first_size: int
    second_size: int
    first_root: bytes
    second_root: bytes
    proof: list[bytes]


@asynccontextmanager
async def _connection() -> AsyncIterator[Any]:
    async with LedgerLeaf._meta.db.transaction() as transaction:
        yield transaction.connection


async def _latest(connection: Any) -> StoredCheckpoint | None:
    row = await connection.fetchrow(
        "SELECT tree_size, root_hash, note, signed_at FROM ledger_checkpoints "
        "ORDER BY tree_size DESC LIMIT 1")
    if row is None:
        return None
    return StoredCheckpoint(int(row["tree_size"]), bytes(row["root_hash"]), row["note"],
                            row["signed_at"])


async def latest_checkpoint() -> StoredCheckpoint:
    async with _connection() as connection:
        checkpoint = await _latest(connection)
    if checkpoint is None:
        raise LedgerLookupError("the log has not signed a checkpoint yet")
    return checkpoint


async def _published_size(connection: Any) -> int:
    checkpoint = await _latest(connection)
    return 0 if checkpoint is None else checkpoint.tree_size


async def read_tile(tile: TileRef) -> bytes:
    """The body of a hash tile (not an entry bundle) covered by the newest checkpoint."""
    async with _connection() as connection:
        hashes_at_level = await _published_size(connection) >> (TILE_HEIGHT * tile.level)
        if tile.index * TILE_WIDTH + tile.width > hashes_at_level:
            raise LedgerLookupError(f"{tile.path} is beyond the newest checkpoint")
        data = await connection.fetchval(
            "SELECT hashes FROM ledger_tiles WHERE level = $1 AND tile_index = $2",
            tile.level, tile.index)
    if data is None or len(data) < tile.width * HASH_SIZE_BYTES:
        # The checkpoint covers it but the tree store lacks it: reconciliation reports this.
        raise LedgerLookupError(f"{tile.path} is missing from the stored tree")
    return bytes(data[:tile.width * HASH_SIZE_BYTES])


async def read_entry_bundle(bundle: TileRef) -> bytes:
    """The uint16-length-prefixed entries of a bundle covered by the newest checkpoint."""
    first = bundle.index * TILE_WIDTH
    async with _connection() as connection:
        if first + bundle.width > await _published_size(connection):
            raise LedgerLookupError(f"{bundle.path} is beyond the newest checkpoint")
        rows = await connection.fetch(
            "SELECT entry FROM ledger_leaves WHERE leaf_index >= $1 AND leaf_index < $2 "
            "ORDER BY leaf_index", first, first + bundle.width)
    if len(rows) != bundle.width:
        raise LedgerLookupError(f"{bundle.path}: leaves are missing from the log")
    return encode_entry_bundle([bytes(row["entry"]) for row in rows])


@asynccontextmanager
async def _read_connection() -> AsyncIterator[Any]:
    """A pooled connection without a transaction around it, for reads that need no snapshot.

    Serving an entry needs none: its one statement reads the checkpoint, the leaf and the tiles
    in one snapshot, and should a second statement be needed, tiles only grow, so they still
    hold exactly the hashes the checkpoint covers.
    """
    pool = getattr(LedgerLeaf._meta.db, "pool", None)
    if pool is None:  # no pool (a script or a test): a transaction's connection
        async with _connection() as connection:
            yield connection
        return
    async with pool.acquire() as connection:
        yield connection


# The newest checkpoint, the leaf (only under it) and the stored tiles among $2/$3, in one
# statement: one snapshot and one round trip.
_ENTRY_WITH_TILES = """
SELECT c.tree_size, c.root_hash, c.note, c.signed_at, l.entry, l.leaf_hash,
       t.levels, t.indexes, t.hashes
FROM (SELECT tree_size, root_hash, note, signed_at FROM ledger_checkpoints
      ORDER BY tree_size DESC LIMIT 1) AS c
LEFT JOIN ledger_leaves l ON l.leaf_index = $1 AND l.leaf_index < c.tree_size
CROSS JOIN LATERAL (
    SELECT array_agg(s.level) AS levels, array_agg(s.tile_index) AS indexes,
           array_agg(s.hashes) AS hashes
    FROM ledger_tiles s JOIN unnest($2::smallint[], $3::bigint[]) AS k(level, tile_index)
         USING (level, tile_index)) AS t
"""


async def entry_with_proof(leaf_index: int, cache: ProofCache | None = None) -> EntryWithProof:
    """Leaf `leaf_index` and its RFC 9162 inclusion proof in the newest checkpoint's tree.

    With the `cache` the app keeps, most proofs take one statement: the checkpoint, the leaf
    and only the tiles whose hashes are not kept yet. Every proof is verified against the
    checkpoint's root before it is returned, so a kept hash that disagrees with the log (a
    database replaced under a running process) is noticed: the cache is emptied and the
    proof rebuilt from the stored tiles alone.
    """
    if leaf_index < 0:
        raise LedgerQueryError("a leaf index is not negative", field="index")
    if cache is None:
        cache = ProofCache(max_pyramids=0, max_edge_nodes=0)
    try:
        return await _entry_with_proof(leaf_index, cache)
    except ProofError as error:
        if cache.is_empty:
            raise TreeStoreError(f"the stored tree does not prove leaf {leaf_index}") from error
    cache.clear()
    try:
        return await _entry_with_proof(leaf_index, cache)
    except ProofError as error:
        raise TreeStoreError(f"the stored tree does not prove leaf {leaf_index}") from error


async def _entry_with_proof(leaf_index: int, cache: ProofCache) -> EntryWithProof:
    hinted_size = cache.tree_size_hint
    nodes = inclusion_node_ids(leaf_index, hinted_size) if leaf_index < hinted_size else None
    known, wanted = cache.known_hashes(nodes.node_ids) if nodes else ({}, set())
    async with _read_connection() as connection:
        row = await connection.fetchrow(_ENTRY_WITH_TILES, leaf_index,
                                        [level for level, _ in wanted],
                                        [index for _, index in wanted])
        if row is None or leaf_index >= int(row["tree_size"]):
            raise LedgerLookupError(f"leaf {leaf_index} is not in a signed checkpoint yet")
        if row["entry"] is None:
            raise LedgerLookupError(f"leaf {leaf_index} is missing from the log")
        checkpoint = StoredCheckpoint(int(row["tree_size"]), bytes(row["root_hash"]), row["note"],
                                      row["signed_at"])
        tiles: dict[TileKey, bytes] = dict(zip(
            zip(row["levels"] or (), row["indexes"] or (), strict=True),
            row["hashes"] or (), strict=True))
        if nodes is None or checkpoint.tree_size != hinted_size:
            # A seal moved the tree on since the hint: the right edge of the proof moved too.
            cache.tree_size_hint = checkpoint.tree_size
            nodes = inclusion_node_ids(leaf_index, checkpoint.tree_size)
            known, wanted = cache.known_hashes(nodes.node_ids)
            if wanted - tiles.keys():
                tiles |= await load_tiles(connection, wanted - tiles.keys())
    hashes = []
    for node in nodes.node_ids:
        if node in known:
            hashes.append(known[node])
            continue
        data = tiles.get(tile_key_of_node(node))
        if data is None:
            raise TreeStoreError(f"the stored tree has no tile for node {node}")
        try:
            hashes.append(cache.hash_from_tile(node, data))
        except TileHashMissingError as error:
            raise TreeStoreError(str(error)) from error
    leaf_hash = bytes(row["leaf_hash"])
    proof = nodes.rehash(hashes)
    verify_inclusion(leaf_index, checkpoint.tree_size, leaf_hash, proof, checkpoint.root_hash)
    return EntryWithProof(leaf_index, bytes(row["entry"]), leaf_hash, checkpoint, proof)


async def consistency_proof(first_size: int, second_size: int | None) -> ConsistencyProof:
    """The RFC 9162 consistency proof between two tree sizes up to the newest checkpoint's
    (`second_size` None: the newest checkpoint's size)."""
    if first_size < 1:
        raise LedgerQueryError("the first tree size must be at least 1", field="from")
    if second_size is not None and second_size < 1:
        raise LedgerQueryError("the second tree size must be at least 1", field="to")
    async with _connection() as connection:
        published = await _published_size(connection)
        second = published if second_size is None else second_size
        if second > published:
            raise LedgerLookupError(f"tree size {second} is beyond the newest checkpoint "
                                    f"({published})")
        if first_size > second:
            raise LedgerQueryError(f"the first tree size {first_size} exceeds the second "
                                   f"({second})", field="from")
        first_root = await root_at(connection, first_size)
        second_root = await root_at(connection, second)
        if first_size == second:
            return ConsistencyProof(first_size, second, first_root, second_root, [])
        nodes = consistency_node_ids(first_size, second)
        hashes = await read_nodes(connection, nodes.node_ids)
    return ConsistencyProof(first_size, second, first_root, second_root, nodes.rehash(hashes))
