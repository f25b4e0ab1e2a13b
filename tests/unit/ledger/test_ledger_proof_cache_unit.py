"""Kept hashes equal what rehashing the stored tile gives: a full tile's pyramid node by node,
a right-edge node from a partial tile; both kept sets stay within their bounds."""

from __future__ import annotations

import hashlib

import pytest

from ledger.hashing import HASH_SIZE_BYTES, NodeId
from ledger.proof_cache import (
    FULL_TILE_BYTES,
    ProofCache,
    TileHashMissingError,
    TilePyramid,
    node_in_pyramid,
    node_in_tile,
    perfect_root_of_run,
)
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH
from ledger.tree_store import perfect_root, split_hashes


def full_tile(seed: int) -> bytes:
    return b"".join(hashlib.sha256(f"{seed}:{position}".encode()).digest()
                    for position in range(TILE_WIDTH))


def test_every_node_of_a_pyramid_is_the_root_of_its_hashes() -> None:
    data = full_tile(1)
    hashes = split_hashes(data)
    pyramid = TilePyramid(data)
    for height in range(TILE_HEIGHT + 1):
        width = 1 << height
        for position in range(TILE_WIDTH >> height):
            expected = perfect_root(hashes[position * width:(position + 1) * width])
            assert pyramid.node(height, position) == expected
    with pytest.raises(IndexError):
        pyramid.node(TILE_HEIGHT, 1)


def test_a_run_of_hashes_folds_like_the_level_by_level_root() -> None:
    hashes = split_hashes(full_tile(5))
    for count in (1, 2, 8, 128):
        assert perfect_root_of_run(b"".join(hashes[:count])) == perfect_root(hashes[:count])


def test_a_pyramid_answers_like_the_tile_it_came_from_at_any_tile_level() -> None:
    data = full_tile(2)
    pyramid = TilePyramid(data)
    # Tile 1/3 covers nodes NodeId(8 + h, (3·256 + p) >> h).
    for height in (0, 3, 8):
        node = NodeId(TILE_HEIGHT + height, (3 * TILE_WIDTH + 64) >> height)
        assert node_in_pyramid(pyramid, node) == node_in_tile(data, node)


def test_only_full_tiles_make_pyramids_and_a_short_tile_is_refused() -> None:
    with pytest.raises(ValueError, match="full tile"):
        TilePyramid(full_tile(3)[:FULL_TILE_BYTES - HASH_SIZE_BYTES])
    with pytest.raises(TileHashMissingError):
        node_in_tile(full_tile(3)[:4 * HASH_SIZE_BYTES], NodeId(3, 0))


def test_full_tiles_keep_pyramids_and_partial_tiles_only_their_nodes() -> None:
    cache = ProofCache(max_pyramids=2, max_edge_nodes=2)
    partial = full_tile(9)[:40 * HASH_SIZE_BYTES]
    edge = NodeId(3, 4)  # hashes 32…39 of tile 0/0
    assert cache.hash_from_tile(edge, partial) == node_in_tile(partial, edge)
    assert cache.kept_tiles == frozenset()
    assert cache.kept_edge_nodes == {edge}
    known, wanted = cache.known_hashes([edge, NodeId(3, 5), NodeId(0, TILE_WIDTH)])
    assert known == {edge: node_in_tile(partial, edge)}
    assert wanted == {(0, 0), (0, 1)}
    assert (cache.hits, cache.misses) == (1, 2)


def test_the_kept_pyramids_are_bounded_and_drop_the_least_recently_used() -> None:
    cache = ProofCache(max_pyramids=2)
    for index in range(2):
        cache.hash_from_tile(NodeId(0, index * TILE_WIDTH), full_tile(index))
    cache.known_hashes([NodeId(0, 0)])  # tile 0/1 is now the least recently used
    cache.hash_from_tile(NodeId(0, 2 * TILE_WIDTH), full_tile(2))
    assert cache.kept_tiles == {(0, 0), (0, 2)}
    right_half_of_tile_2 = NodeId(TILE_HEIGHT - 1, 5)
    known, wanted = cache.known_hashes([right_half_of_tile_2])
    assert known[right_half_of_tile_2] == perfect_root(split_hashes(full_tile(2))[128:])
    assert not wanted


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache = ProofCache(max_pyramids=0, max_edge_nodes=0)
    right_half = NodeId(TILE_HEIGHT - 1, 1)
    assert (cache.hash_from_tile(right_half, full_tile(4))
            == perfect_root(split_hashes(full_tile(4))[128:]))
    assert cache.hash_from_tile(NodeId(0, 1), full_tile(4)[:64]) == full_tile(4)[32:64]
    assert cache.is_empty


def test_a_memory_budget_bounds_the_kept_pyramids() -> None:
    assert ProofCache.within(0).max_pyramids == 0
    assert ProofCache.within(0).max_edge_nodes == 0
    # 64 MB: every full tile of a 10⁶-leaf log (3,906 at level 0, 15 at level 1).
    assert ProofCache.within(64).max_pyramids >= 3906 + 15
