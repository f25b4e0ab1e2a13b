"""RFC 6962 hashing and right-edge folding."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.hashing import (
    EMPTY_ROOT,
    NodeId,
    fold_right_edge,
    largest_power_of_two_below,
    leaf_hash,
    node_hash,
    range_node_ids,
    root_from_leaf_hashes,
    root_from_subtree_hashes,
    root_node_ids,
)

# The leaf inputs and roots of the certificate-transparency reference Merkle tree tests
# (merkle_tree_test.cc), used by Trillian and transparency-dev/merkle as known answers.
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
REFERENCE_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert root_from_subtree_hashes(0, []) == EMPTY_ROOT


def test_leaf_and_node_hashes_use_the_domain_separation_prefixes() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert leaf_hash(b"").hex() == REFERENCE_ROOTS[0]
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )


@pytest.mark.parametrize("tree_size", range(1, len(REFERENCE_LEAVES) + 1))
def test_reference_roots(tree_size: int) -> None:
    leaves = [leaf_hash(entry) for entry in REFERENCE_LEAVES[:tree_size]]
    assert root_from_leaf_hashes(leaves).hex() == REFERENCE_ROOTS[tree_size - 1]


def test_range_decomposition() -> None:
    assert root_node_ids(13) == [NodeId(3, 0), NodeId(2, 2), NodeId(0, 12)]
    assert root_node_ids(16) == [NodeId(4, 0)]
    assert root_node_ids(0) == []
    # A range not aligned at its start is covered bottom-up on the left, then top-down.
    assert range_node_ids(3, 13) == [NodeId(0, 3), NodeId(2, 1), NodeId(2, 2), NodeId(0, 12)]
    assert NodeId(2, 2).first_leaf == 8
    assert NodeId(2, 2).end_leaf == 12
    with pytest.raises(ValueError, match="invalid leaf range"):
        range_node_ids(5, 4)


@given(st.integers(min_value=0, max_value=2**40), st.integers(min_value=0, max_value=2**20))
def test_range_node_ids_tile_the_range_exactly_with_aligned_subtrees(
    begin: int, length: int
) -> None:
    position = begin
    for node in range_node_ids(begin, begin + length):
        assert node.first_leaf == position
        position = node.end_leaf
    assert position == begin + length


@given(st.integers(min_value=1, max_value=300))
def test_folding_the_right_edge_gives_the_root(tree_size: int) -> None:
    leaves = [leaf_hash(index.to_bytes(2, "big")) for index in range(tree_size)]
    subtree_hashes = [
        root_from_leaf_hashes(leaves[node.first_leaf : node.end_leaf])
        for node in root_node_ids(tree_size)
    ]
    assert root_from_subtree_hashes(tree_size, subtree_hashes) == root_from_leaf_hashes(leaves)


def test_folding_needs_the_right_number_of_hashes() -> None:
    with pytest.raises(ValueError, match="3 right-edge subtrees, got 2"):
        root_from_subtree_hashes(13, [EMPTY_ROOT, EMPTY_ROOT])
    with pytest.raises(ValueError, match="nothing to fold"):
        fold_right_edge([])


def test_largest_power_of_two_below() -> None:
    assert [largest_power_of_two_below(number) for number in (2, 3, 4, 5, 8, 9)] == [
        1,
        2,
        2,
        4,
        4,
        8,
    ]
    with pytest.raises(ValueError, match="no power of two"):
        largest_power_of_two_below(1)
