"""RFC 6962 §2.1 Merkle tree hashing (the same definition RFC 9162 §2.1.1 carries forward).

A stored tree keeps only the hashes of *perfect* subtrees, addressed by `NodeId(level, index)`:
level 0 holds leaf hashes and node (L, i) covers leaves [i·2^L, (i+1)·2^L). Any other tree hash,
the root of a tree whose size is not a power of two included, is folded on demand from the
perfect subtrees along the tree's right edge (its "compact range").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

HASH_SIZE_BYTES = 32

# RFC 6962 §2.1: the one-byte prefixes keep a leaf hash from ever colliding with a node hash
# (the second-preimage defence the RFC's security considerations rely on).
LEAF_HASH_PREFIX = b"\x00"
NODE_HASH_PREFIX = b"\x01"

# RFC 6962 §2.1: MTH({}) = SHA-256() — the hash of an empty string, for the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()


@dataclass(frozen=True, order=True, slots=True)
class NodeId:
    """A perfect subtree: level 0 is a leaf; (level, index) covers leaves
    [index·2^level, (index+1)·2^level)."""

    level: int
    index: int

    @property
    def first_leaf(self) -> int:
        return self.index << self.level

    @property
    def end_leaf(self) -> int:
        """One past the last leaf the node covers."""
        return (self.index + 1) << self.level


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 ‖ d(0)) — RFC 6962 §2.1."""
    return hashlib.sha256(LEAF_HASH_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])) — RFC 6962 §2.1."""
    return hashlib.sha256(NODE_HASH_PREFIX + left + right).digest()


def largest_power_of_two_below(number: int) -> int:
    """The k of RFC 6962 §2.1: the largest power of two strictly smaller than `number` (> 1)."""
    if number < 2:
        raise ValueError(f"no power of two splits a range of {number} leaves")
    return 1 << ((number - 1).bit_length() - 1)


def range_node_ids(begin: int, end: int) -> list[NodeId]:
    """The fewest perfect subtrees that exactly cover leaves [begin, end), left to right.

    For the ranges Merkle proofs need ([0, size) and the right part [mid, size) of a split) the
    subtrees come out in strictly decreasing size, which is what `fold_right_edge` expects.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"invalid leaf range [{begin}, {end})")
    node_ids: list[NodeId] = []
    position = begin
    while position < end:
        level = (end - position).bit_length() - 1
        if position:
            # A subtree must start on a multiple of its own width.
            trailing_zero_bits = (position & -position).bit_length() - 1
            level = min(level, trailing_zero_bits)
        node_ids.append(NodeId(level, position >> level))
        position += 1 << level
    return node_ids


def root_node_ids(tree_size: int) -> list[NodeId]:
    """The perfect subtrees whose hashes fold into the root of a tree of `tree_size` leaves."""
    return range_node_ids(0, tree_size)


def fold_right_edge(subtree_hashes: Sequence[bytes]) -> bytes:
    """Fold perfect-subtree hashes of decreasing size (left to right) into one tree hash.

    RFC 6962 §2.1 splits a range at the largest power of two, so the left part is always the
    biggest perfect subtree and the right part recurses on the rest: the hash is therefore
    built from the smallest (rightmost) subtree outwards.
    """
    if not subtree_hashes:
        raise ValueError("nothing to fold: a range needs at least one subtree hash")
    folded = subtree_hashes[-1]
    for left in reversed(subtree_hashes[:-1]):
        folded = node_hash(left, folded)
    return folded


def root_from_subtree_hashes(tree_size: int, subtree_hashes: Sequence[bytes]) -> bytes:
    """The root of a tree of `tree_size` from the hashes of `root_node_ids(tree_size)`, in order."""
    expected_count = len(root_node_ids(tree_size))
    if len(subtree_hashes) != expected_count:
        raise ValueError(
            f"a tree of size {tree_size} has {expected_count} right-edge subtrees, "
            f"got {len(subtree_hashes)} hashes"
        )
    if tree_size == 0:
        return EMPTY_ROOT
    return fold_right_edge(subtree_hashes)


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) from all leaf hashes — for tests and small trees.

    Pairing each level left to right and carrying an unpaired last node up unchanged yields
    exactly the RFC 6962 §2.1 tree (unlike Bitcoin's tree, which duplicates that node).
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level_hashes = list(leaf_hashes)
    while len(level_hashes) > 1:
        parents = [
            node_hash(level_hashes[position], level_hashes[position + 1])
            for position in range(0, len(level_hashes) - 1, 2)
        ]
        if len(level_hashes) % 2:
            parents.append(level_hashes[-1])
        level_hashes = parents
    return level_hashes[0]
