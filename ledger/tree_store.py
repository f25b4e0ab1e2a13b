"""The stored Merkle tree: C2SP tlog-tiles tiles kept as database rows.

Why tiles rather than one row per perfect-subtree node: a tile row is exactly what
`/ledger/tile/<L>/<N>` serves (one primary-key read, no assembly), sealing k leaves writes about
k/256 + log₂₅₆(n) rows instead of 2k, and any proof needs at most two tiles per level (three or
four levels at 10⁶ leaves), fetched in one query. The tree heights between tile levels are
rehashed from a tile's hashes on demand — at most 127 hashes per proof element, as the spec
intends ("The Merkle Tree levels between those expressed by the tile hashes are reconstructed
by hashing the leaves").

Every function here takes the connection of the caller's transaction (asyncpg), since sealing,
serving and reconciliation each decide their own transaction boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from ledger.hashing import (
    HASH_SIZE_BYTES,
    NodeId,
    node_hash,
    root_from_subtree_hashes,
    root_node_ids,
)
from ledger.proof_cache import (
    FULL_TILE_BYTES,
    TileHashMissingError,
    TilePyramid,
    node_in_pyramid,
    node_in_tile,
    tile_key_of_node,
)
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileKey

# Tiles above level 0 (≈ 16 KB each) for sealing and consistency proofs, which cross them
# every time; proofs of inclusion keep their own bounded cache (ledger.proof_cache).
FULL_TILE_PYRAMIDS_CACHED = 256


class TreeStoreError(RuntimeError):
    """The stored tree lacks a tile or hash that the requested tree size needs."""


def split_hashes(data: bytes) -> list[bytes]:
    return [data[offset:offset + HASH_SIZE_BYTES]
            for offset in range(0, len(data), HASH_SIZE_BYTES)]


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The hash of a perfect subtree over `hashes` (a power-of-two count), level by level."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[position], level[position + 1])
                 for position in range(0, len(level), 2)]
    return level[0]


@lru_cache(maxsize=FULL_TILE_PYRAMIDS_CACHED)
def _full_tile_pyramid(data: bytes) -> TilePyramid:
    """Keyed by the tile's bytes as read, so a cached answer is the same pure function of the
    stored data as a fresh one (a rewritten tile is a different key, never a stale hit)."""
    return TilePyramid(data)


def node_from_tiles(tiles: Mapping[TileKey, bytes], node: NodeId) -> bytes:
    """The hash of perfect subtree `node`, from the tile that covers it."""
    key = tile_key_of_node(node)
    data = tiles.get(key)
    if data is None:
        raise TreeStoreError(f"the stored tree has no hashes for node {node} (tile {key})")
    if key[0] > 0 and len(data) == FULL_TILE_BYTES:
        return node_in_pyramid(_full_tile_pyramid(data), node)
    try:
        return node_in_tile(data, node)
    except TileHashMissingError as error:
        raise TreeStoreError(f"the stored tree has no hashes for node {node}: {error}") from error


async def load_tiles(connection: Any, keys: Iterable[TileKey]) -> dict[TileKey, bytes]:
    """The stored tiles among `keys` (missing ones are simply absent), in one query."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await connection.fetch(
        "SELECT t.level, t.tile_index, t.hashes FROM ledger_tiles t "
        "JOIN unnest($1::smallint[], $2::bigint[]) AS k(level, tile_index) "
        "USING (level, tile_index)",
        [level for level, _ in wanted], [index for _, index in wanted])
    return {(row["level"], row["tile_index"]): bytes(row["hashes"]) for row in rows}


async def read_nodes(connection: Any, nodes: Sequence[NodeId]) -> list[bytes]:
    """The hashes of perfect subtrees `nodes`, in order, from one fetch of their tiles."""
    tiles = await load_tiles(connection, (tile_key_of_node(node) for node in nodes))
    return [node_from_tiles(tiles, node) for node in nodes]


async def save_tiles(connection: Any, tiles: Mapping[TileKey, bytes]) -> None:
    """Insert new tiles and extend grown ones (the table's trigger refuses anything else)."""
    if not tiles:
        return
    await connection.executemany(
        "INSERT INTO ledger_tiles (level, tile_index, width, hashes) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (level, tile_index) DO UPDATE "
        "SET width = EXCLUDED.width, hashes = EXCLUDED.hashes",
        [(level, index, len(data) // HASH_SIZE_BYTES, data)
         for (level, index), data in sorted(tiles.items())])


def right_edge_tile_keys(tree_size: int) -> list[TileKey]:
    """The partial tiles of a tree of `tree_size`: the only stored tiles that can still grow."""
    keys = []
    level = 0
    while hashes_at_level := tree_size >> (TILE_HEIGHT * level):
        if hashes_at_level % TILE_WIDTH:
            keys.append((level, hashes_at_level // TILE_WIDTH))
        level += 1
    return keys


def integrate(old_size: int, new_leaf_hashes: Sequence[bytes],
              partial_tiles: Mapping[TileKey, bytes]) -> dict[TileKey, bytes]:
    """The tiles that change when leaves `new_leaf_hashes` are appended to a tree of `old_size`.

    `partial_tiles` must hold the stored partial tiles of the old tree (`right_edge_tile_keys`).
    Each level's new hashes extend that level's partial tile; every tile that becomes full
    contributes its root as one new hash to the level above (tlog-tiles "Merkle Tree").
    """
    changed: dict[TileKey, bytes] = {}
    level = 0
    hashes_before = old_size
    new_hashes = list(new_leaf_hashes)
    while new_hashes:
        first_tile = hashes_before // TILE_WIDTH
        prefix_width = hashes_before % TILE_WIDTH
        prefix = partial_tiles.get((level, first_tile), b"") if prefix_width else b""
        if len(prefix) != prefix_width * HASH_SIZE_BYTES:
            raise TreeStoreError(
                f"stored tile {level}/{first_tile} holds {len(prefix) // HASH_SIZE_BYTES} "
                f"hashes, the tree of size {old_size} needs {prefix_width}")
        buffer = split_hashes(prefix) + new_hashes
        completed_roots = []
        for offset in range(0, len(buffer), TILE_WIDTH):
            chunk = buffer[offset:offset + TILE_WIDTH]
            changed[(level, first_tile + offset // TILE_WIDTH)] = b"".join(chunk)
            if len(chunk) == TILE_WIDTH:
                completed_roots.append(perfect_root(chunk))
        new_hashes = completed_roots
        hashes_before >>= TILE_HEIGHT
        level += 1
    return changed


def root_from_tiles(tiles: Mapping[TileKey, bytes], tree_size: int) -> bytes:
    """MTH of the first `tree_size` leaves, folded from the right-edge subtrees' hashes."""
    return root_from_subtree_hashes(
        tree_size, [node_from_tiles(tiles, node) for node in root_node_ids(tree_size)])


async def root_at(connection: Any, tree_size: int) -> bytes:
    """The root of the stored tree at any size it covers."""
    nodes = root_node_ids(tree_size)
    tiles = await load_tiles(connection, (tile_key_of_node(node) for node in nodes))
    return root_from_tiles(tiles, tree_size)
