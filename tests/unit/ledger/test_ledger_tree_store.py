"""Tiles built incrementally equal tiles built at once, and every node read from them equals
the RFC 6962 hash of its leaves."""

from __future__ import annotations

import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.hashing import NodeId, leaf_hash, root_from_leaf_hashes
from ledger.keys import SigningKeyError, load_signer
from ledger.tiles import TILE_WIDTH, tiles_for_growth
from ledger.tree_store import integrate, node_from_tiles, right_edge_tile_keys, root_from_tiles

LEAVES = [leaf_hash(b"entry %d" % number) for number in range(70_000)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=6))
def test_incremental_integration_equals_building_at_once(batches: list[int]) -> None:
    stored: dict[tuple[int, int], bytes] = {}
    size = 0
    for batch in batches:
        partial = {key: stored[key] for key in right_edge_tile_keys(size)}
        stored.update(integrate(size, LEAVES[size:size + batch], partial))
        size += batch
        assert root_from_tiles(stored, size) == root_from_leaf_hashes(LEAVES[:size])
    assert stored == integrate(0, LEAVES[:size], {})
    published = {(tile.level, tile.index) for tile in tiles_for_growth(0, size)
                 if not tile.is_entry_bundle}
    assert set(stored) == published


def test_nodes_between_tile_levels_are_rehashed_from_the_tile() -> None:
    tiles = integrate(0, LEAVES[:70_000], {})
    assert len(tiles[(1, 1)]) // 32 == 17  # 70,000 leaves: level 1 holds 273 hashes
    for node in (NodeId(0, 69_999), NodeId(3, 8), NodeId(8, 5), NodeId(12, 16), NodeId(16, 0)):
        expected = root_from_leaf_hashes(LEAVES[node.first_leaf:node.end_leaf])
        assert node_from_tiles(tiles, node) == expected
    assert len(tiles[(0, 0)]) == TILE_WIDTH * 32


def test_a_partial_tile_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(RuntimeError, match="needs 3"):
        integrate(3, LEAVES[3:5], {(0, 0): LEAVES[0] + LEAVES[1]})


def test_the_signing_key_is_generated_once_private_and_pins_the_origin(tmp_path) -> None:
    path = tmp_path / "ledger" / "signing.skey"
    signer = load_signer(origin=None, signing_key=None, key_path=path,
                         default_origin="exchange.test/ledger")
    assert signer.name == "exchange.test/ledger"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_signer(origin="exchange.test/ledger", signing_key=None, key_path=path,
                        default_origin="ignored/ledger")
    assert again.verifier.to_vkey() == signer.verifier.to_vkey()
    with pytest.raises(SigningKeyError, match="cannot change"):
        load_signer(origin="elsewhere.test/ledger", signing_key=None, key_path=path,
                    default_origin="x/ledger")
    with pytest.raises(SigningKeyError, match="MARKET_LEDGER_SIGNING_KEY"):
        load_signer(origin=None, signing_key="PRIVATE+KEY+nonsense", key_path=path,
                    default_origin="x/ledger")
    secret = path.read_text().strip().rsplit("+", 1)[1]
    assert secret not in repr(signer)  # the private key never reaches a log line
