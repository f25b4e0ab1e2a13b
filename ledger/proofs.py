"""Merkle inclusion and consistency proofs: generation from stored subtrees, and verification.

Generation follows the design of transparency-dev/merkle's `proof` package: the tree stores
only perfect subtree hashes, so a proof is first described as the list of `NodeId`s to fetch
(all in one query) and then `ProofNodes.rehash` folds the few hashes that make up the one
*ephemeral* node — a right-edge subtree that is not perfect and so is never stored — into the
RFC 9162 proof. Proof contents follow RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (PROOF/SUBPROOF).

Verification implements RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, so that a proof accepted
here is accepted by any other conforming verifier and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.hashing import (
    HASH_SIZE_BYTES,
    NodeId,
    fold_right_edge,
    largest_power_of_two_below,
    node_hash,
    range_node_ids,
)


class ProofError(ValueError):
    """A proof request is invalid, or a proof does not verify."""


@dataclass(frozen=True)
class ProofNodes:
    """The stored nodes a proof needs, and which of them fold into the ephemeral node.

    `node_ids[ephemeral_begin:ephemeral_end]` (empty when the proof has no ephemeral node) are the
    perfect subtrees, left to right, that cover one non-perfect right-edge subtree.
    """

    node_ids: tuple[NodeId, ...]
    ephemeral_begin: int = 0
    ephemeral_end: int = 0

    def rehash(self, hashes: Sequence[bytes]) -> list[bytes]:
        """Turn the hashes of `node_ids` (same order) into the RFC 9162 proof."""
        if len(hashes) != len(self.node_ids):
            raise ProofError(f"got {len(hashes)} hashes for {len(self.node_ids)} proof nodes")
        for position, value in enumerate(hashes):
            _require_hash(f"hash of node {self.node_ids[position]}", value)
        if self.ephemeral_end - self.ephemeral_begin < 2:
            return list(hashes)
        return [
            *hashes[: self.ephemeral_begin],
            fold_right_edge(hashes[self.ephemeral_begin : self.ephemeral_end]),
            *hashes[self.ephemeral_end :],
        ]


def _proof_nodes_from_ranges(leaf_ranges: Sequence[tuple[int, int]]) -> ProofNodes:
    """Map each proof element's leaf range to stored nodes; at most one range is not perfect."""
    node_ids: list[NodeId] = []
    ephemeral_begin = ephemeral_end = 0
    for begin, end in leaf_ranges:
        covering = range_node_ids(begin, end)
        if len(covering) > 1:
            # Only the right half of the first split where the path turns left can be
            # non-perfect; every range below that split is perfect (RFC 9162 §2.1.3.1).
            ephemeral_begin, ephemeral_end = len(node_ids), len(node_ids) + len(covering)
        node_ids.extend(covering)
    return ProofNodes(tuple(node_ids), ephemeral_begin, ephemeral_end)


def inclusion_node_ids(leaf_index: int, tree_size: int) -> ProofNodes:
    """The stored nodes of PATH(m, D[n]) (RFC 9162 §2.1.3.1): leaf m in a tree of n leaves."""
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is outside a tree of size {tree_size}")
    siblings_top_down: list[tuple[int, int]] = []
    low, high = 0, tree_size
    while high - low > 1:
        middle = low + largest_power_of_two_below(high - low)
        if leaf_index < middle:
            siblings_top_down.append((middle, high))
            high = middle
        else:
            siblings_top_down.append((low, middle))
            low = middle
    # The RFC appends each sibling after the sub-path, so the proof runs leaf to root.
    return _proof_nodes_from_ranges(siblings_top_down[::-1])


def consistency_node_ids(size1: int, size2: int) -> ProofNodes:
    """The nodes of PROOF(m, D[n]) (RFC 9162 §2.1.4.1) from tree size `size1` to `size2`."""
    if size1 <= 0:
        raise ProofError(f"a consistency proof needs a non-empty first tree, got size {size1}")
    if size1 > size2:
        raise ProofError(f"first tree size {size1} exceeds second tree size {size2}")
    elements_top_down: list[tuple[int, int]] = []
    # `old_tree_is_whole_subtree` is SUBPROOF's flag b: true while [low, high) is the whole old
    # tree's range, whose root the verifier already holds and so need not be sent.
    old_tree_is_whole_subtree = True
    low, high = 0, size2
    while size1 != high:
        middle = low + largest_power_of_two_below(high - low)
        if size1 <= middle:
            elements_top_down.append((middle, high))
            high = middle
        else:
            elements_top_down.append((low, middle))
            low = middle
            old_tree_is_whole_subtree = False
    elements = elements_top_down[::-1]
    if not old_tree_is_whole_subtree:
        elements.insert(0, (low, high))
    return _proof_nodes_from_ranges(elements)


def inclusion_proof(
    leaf_index: int, tree_size: int, get_node: Callable[[NodeId], bytes]
) -> list[bytes]:
    """The RFC 9162 inclusion proof, fetching each stored node hash through `get_node`."""
    nodes = inclusion_node_ids(leaf_index, tree_size)
    return nodes.rehash([get_node(node_id) for node_id in nodes.node_ids])


def consistency_proof(size1: int, size2: int, get_node: Callable[[NodeId], bytes]) -> list[bytes]:
    """The RFC 9162 consistency proof, fetching each stored node hash through `get_node`."""
    nodes = consistency_node_ids(size1, size2)
    return nodes.rehash([get_node(node_id) for node_id in nodes.node_ids])


def _require_hash(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE_BYTES:
        size = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise ProofError(f"{name} must be a {HASH_SIZE_BYTES}-byte SHA-256 hash, got {size}")
    return value


def _shift_while_lsb_clear(first_index: int, second_index: int) -> tuple[int, int]:
    """Right-shift both until LSB(first) is set or first is 0 (RFC 9162 §2.1.3.2 step 4.b.ii)."""
    while first_index and not first_index & 1:
        first_index >>= 1
        second_index >>= 1
    return first_index, second_index


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof — RFC 9162 §2.1.3.2 steps 1–5 without the final
    root comparison. Raises `ProofError` when the proof cannot belong to such a tree."""
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is outside a tree of size {tree_size}")
    _require_hash("leaf hash", leaf_hash)
    for position, element in enumerate(proof):
        _require_hash(f"inclusion proof element {position}", element)
    first_index, second_index = leaf_index, tree_size - 1
    computed = leaf_hash
    for element in proof:
        if second_index == 0:
            raise ProofError(
                f"inclusion proof is too long for leaf {leaf_index} of a tree of size {tree_size}"
            )
        if first_index & 1 or first_index == second_index:
            computed = node_hash(element, computed)
            first_index, second_index = _shift_while_lsb_clear(first_index, second_index)
        else:
            computed = node_hash(computed, element)
        first_index >>= 1
        second_index >>= 1
    if second_index != 0:
        raise ProofError(
            f"inclusion proof is too short for leaf {leaf_index} of a tree of size {tree_size}"
        )
    return computed


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise `ProofError` unless `proof` shows the leaf is in the tree."""
    _require_hash("root hash", root)
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof for leaf {leaf_index} of a tree of size {tree_size} "
            f"leads to root {computed.hex()}, not {root.hex()}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """RFC 9162 §2.1.4.2: raise `ProofError` unless the tree of `size2` extends that of `size1`."""
    if size1 <= 0:
        raise ProofError(f"consistency from an empty tree is meaningless (first size {size1})")
    if size1 > size2:
        raise ProofError(f"first tree size {size1} exceeds second tree size {size2}")
    if size1 == size2:
        # §2.1.4.2 covers 0 < first < second. Equal sizes name the same tree, which is consistent
        # with itself exactly when the two roots are the same bytes; no hash is computed, so the
        # roots are compared as given, as transparency-dev/merkle does (its vector
        # `sizes-are-equal-one-and-proof-is-empty` expects 12-byte equal roots to pass).
        if proof:
            raise ProofError(f"proof between equal tree sizes must be empty, got {len(proof)}")
        if root1 != root2:
            raise ProofError(f"two trees of size {size1} have different roots")
        return
    _require_hash("first root hash", root1)
    _require_hash("second root hash", root2)
    for position, element in enumerate(proof):
        _require_hash(f"consistency proof element {position}", element)
    # Step 1.
    if not proof:
        raise ProofError(f"consistency proof from size {size1} to {size2} is empty")
    first_root, second_root = _roots_from_consistency_path(size1, size2, proof, root1)
    if first_root != root1:
        raise ProofError(f"consistency proof does not lead to the first root (size {size1})")
    if second_root != root2:
        raise ProofError(f"consistency proof does not lead to the second root (size {size2})")


def _roots_from_consistency_path(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2–7 for 0 < size1 < size2: the two roots the proof implies."""
    path = list(proof)
    # Step 2: when the old tree is a perfect subtree, its root is the proof's implicit first node.
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # Steps 3–4.
    first_index, second_index = size1 - 1, size2 - 1
    while first_index & 1:
        first_index >>= 1
        second_index >>= 1
    # Step 5.
    first_root = second_root = path[0]
    # Step 6.
    for element in path[1:]:
        if second_index == 0:
            raise ProofError(f"consistency proof from size {size1} to {size2} is too long")
        if first_index & 1 or first_index == second_index:
            first_root = node_hash(element, first_root)
            second_root = node_hash(element, second_root)
            first_index, second_index = _shift_while_lsb_clear(first_index, second_index)
        else:
            second_root = node_hash(second_root, element)
        first_index >>= 1
        second_index >>= 1
    # Step 7 (the root comparisons are the caller's).
    if second_index != 0:
        raise ProofError(f"consistency proof from size {size1} to {size2} is too short")
    return first_root, second_root
