"""What proof serving keeps in process between requests: hashes that can never change.

The hash of a perfect subtree inside a signed tree is fixed forever, and the stored tiles
only grow (a database trigger), so anything rehashed from them can be kept without
invalidation:
- a full tile (256 hashes) never changes at all: its whole pyramid of 511 nodes, from its
  hashes up to its root, is kept, and a proof takes its ≤ 8 hashes per tile level from it
  instead of rehashing up to 255 of them;
- a partial tile at the right edge grows with each seal, so the tile itself is never kept —
  only the perfect-subtree hashes already rehashed from it, which its growth cannot change.

Both sets are bounded and drop the least recently used first. Keys name positions in one log:
a cache must not outlive the database it was filled from (each app builds its own, and
`ledger.serving` verifies every proof it builds before serving it).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar

from ledger.hashing import HASH_SIZE_BYTES, NODE_HASH_PREFIX, NodeId
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileKey

FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE_BYTES
# The 256 hashes, the 128 nodes above them, …, the tile's root.
_PYRAMID_NODES = 2 * TILE_WIDTH - 1
# What one kept pyramid costs: its bytes plus the object and LRU entry around them.
PYRAMID_MEMORY_BYTES = _PYRAMID_NODES * HASH_SIZE_BYTES + 200
# ≈ 17 MB: the few tiles above level 0 that every proof crosses, and the leaf-level tiles read
# most recently (recent entries are the ones most often asked for).
DEFAULT_MAX_PYRAMIDS = 1024
# Right-edge hashes (≈ 150 bytes each): a proof needs a handful, the same ones until the edge
# moves on.
DEFAULT_MAX_EDGE_NODES = 4096


def parent_hashes(run: bytes) -> bytes:
    """The level above a run of adjacent hashes (an even count): RFC 6962 §2.1's
    SHA-256(0x01 ‖ left ‖ right) of each pair, read in place as one 64-byte slice."""
    sha256 = hashlib.sha256
    pair = 2 * HASH_SIZE_BYTES
    return b"".join(sha256(NODE_HASH_PREFIX + run[offset:offset + pair]).digest()
                    for offset in range(0, len(run), pair))


def perfect_root_of_run(run: bytes) -> bytes:
    """The root of the perfect subtree over a run of adjacent hashes (a power-of-two count)."""
    while len(run) > HASH_SIZE_BYTES:
        run = parent_hashes(run)
    return run


class TilePyramid:
    """Every node of one full tile, by height: height 0 is its hashes, height 8 its root."""

    __slots__ = ("_nodes",)

    def __init__(self, full_tile: bytes) -> None:
        if len(full_tile) != FULL_TILE_BYTES:
            raise ValueError(f"a full tile is {FULL_TILE_BYTES} bytes, got {len(full_tile)}")
        heights = [full_tile]
        while len(heights[-1]) > HASH_SIZE_BYTES:
            heights.append(parent_hashes(heights[-1]))
        self._nodes = b"".join(heights)

    def node(self, height: int, position: int) -> bytes:
        """The `position`-th node (from the left) at `height` inside the tile."""
        if not 0 <= position < TILE_WIDTH >> height:
            raise IndexError(f"a tile has {TILE_WIDTH >> height} nodes at height {height}")
        # Height h holds 256 >> h nodes, after the 512 - (512 >> h) nodes of the heights below.
        offset = _PYRAMID_NODES + 1 - ((_PYRAMID_NODES + 1) >> height) + position
        return self._nodes[offset * HASH_SIZE_BYTES:(offset + 1) * HASH_SIZE_BYTES]


def tile_key_of_node(node: NodeId) -> TileKey:
    """The tile holding the hashes that node `node` is rehashed from."""
    tile_level, height_in_tile = divmod(node.level, TILE_HEIGHT)
    return tile_level, (node.index << height_in_tile) >> TILE_HEIGHT


def node_in_pyramid(pyramid: TilePyramid, node: NodeId) -> bytes:
    """The hash of perfect subtree `node`, from the pyramid of the full tile covering it."""
    height_in_tile = node.level % TILE_HEIGHT
    return pyramid.node(height_in_tile, node.index % (TILE_WIDTH >> height_in_tile))


class TileHashMissingError(LookupError):
    """A tile holds fewer hashes than the node asked of it needs."""


def node_in_tile(data: bytes, node: NodeId) -> bytes:
    """The hash of perfect subtree `node`, rehashed from the stored tile `data` covering it."""
    height_in_tile = node.level % TILE_HEIGHT
    first_hash = node.index << height_in_tile
    start = first_hash % TILE_WIDTH * HASH_SIZE_BYTES
    end = start + (HASH_SIZE_BYTES << height_in_tile)
    if len(data) < end:
        raise TileHashMissingError(f"tile {'/'.join(map(str, tile_key_of_node(node)))} holds "
                                   f"{len(data) // HASH_SIZE_BYTES} hashes, node {node} needs "
                                   f"{end // HASH_SIZE_BYTES}")
    return perfect_root_of_run(data[start:end])


class ProofCache:
    """Full tiles' pyramids and right-edge node hashes of one log, and the newest tree size
    seen there: from it the tiles a proof needs are known before its statement runs, so they
    are read with the leaf in that one statement."""

    def __init__(self, max_pyramids: int = DEFAULT_MAX_PYRAMIDS,
                 max_edge_nodes: int = DEFAULT_MAX_EDGE_NODES) -> None:
        self.max_pyramids = max_pyramids
        self.max_edge_nodes = max_edge_nodes
        self.tree_size_hint = 0
        self._pyramids: OrderedDict[TileKey, TilePyramid] = OrderedDict()
        self._edge_nodes: OrderedDict[NodeId, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @classmethod
    def within(cls, megabytes: int) -> ProofCache:
        """A cache whose kept pyramids fit in about `megabytes` MB (0: nothing is kept)."""
        max_pyramids = megabytes * 2**20 // PYRAMID_MEMORY_BYTES
        return cls(max_pyramids, DEFAULT_MAX_EDGE_NODES if max_pyramids else 0)

    def known_hashes(self, nodes: Iterable[NodeId]) -> tuple[dict[NodeId, bytes], set[TileKey]]:
        """The hashes of `nodes` kept here, and the tiles the others must be rehashed from."""
        known: dict[NodeId, bytes] = {}
        tiles: set[TileKey] = set()
        for node in nodes:
            key = tile_key_of_node(node)
            pyramid = self._pyramids.get(key)
            if pyramid is not None:
                self._pyramids.move_to_end(key)
                known[node] = node_in_pyramid(pyramid, node)
            elif (edge_hash := self._edge_nodes.get(node)) is not None:
                self._edge_nodes.move_to_end(node)
                known[node] = edge_hash
            else:
                tiles.add(key)
                self.misses += 1
                continue
            self.hits += 1
        return known, tiles

    def hash_from_tile(self, node: NodeId, data: bytes) -> bytes:
        """The hash of `node` from its stored tile `data`, keeping what can be kept."""
        if len(data) == FULL_TILE_BYTES:
            key = tile_key_of_node(node)
            pyramid = self._pyramids.get(key) or TilePyramid(data)
            _keep(self._pyramids, key, pyramid, self.max_pyramids)
            return node_in_pyramid(pyramid, node)
        node_hash = node_in_tile(data, node)
        _keep(self._edge_nodes, node, node_hash, self.max_edge_nodes)
        return node_hash

    def clear(self) -> None:
        self._pyramids.clear()
        self._edge_nodes.clear()

    @property
    def kept_tiles(self) -> frozenset[TileKey]:
        return frozenset(self._pyramids)

    @property
    def kept_edge_nodes(self) -> frozenset[NodeId]:
        return frozenset(self._edge_nodes)

    @property
    def is_empty(self) -> bool:
        return not (self._pyramids or self._edge_nodes)


Key = TypeVar("Key")
Value = TypeVar("Value")


def _keep(kept: OrderedDict[Key, Value], key: Key, value: Value, bound: int) -> None:
    if bound <= 0:
        return
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > bound:
        kept.popitem(last=False)
