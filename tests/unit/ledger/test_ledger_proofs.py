"""Proof generation and RFC 9162 verification: the outside vectors, a reference and properties."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.hashing import (
    EMPTY_ROOT,
    NodeId,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
)
from ledger.proofs import (
    ProofError,
    ProofNodes,
    consistency_node_ids,
    consistency_proof,
    inclusion_node_ids,
    inclusion_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# tests/unit/ledger/<this file> → parents[3] is the repository root; the vectors sit beside it.
VECTORS_DIRECTORY = (
    Path(__file__).resolve().parents[3].parent / "shared" / "testdata" / "tlog-vectors"
)
VECTORS_MISSING_REASON = (
    f"tlog proof vectors not found at {VECTORS_DIRECTORY} "
    "(the shared transparency-dev/merkle testdata lives outside the repository)"
)


def _vector_cases(kind: str) -> list[Any]:
    files = sorted((VECTORS_DIRECTORY / kind).rglob("*.json"))
    if not files:
        return [pytest.param(None, id="vectors-missing")]
    return [
        pytest.param(path, id=str(path.relative_to(VECTORS_DIRECTORY / kind))) for path in files
    ]


def _load_vector(path: Path | None) -> dict[str, Any]:
    if path is None:
        pytest.skip(VECTORS_MISSING_REASON)
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _decode_hashes(encoded: list[str] | None) -> list[bytes]:
    return [base64.b64decode(item) for item in encoded or []]


@pytest.mark.parametrize("vector_path", _vector_cases("inclusion"))
def test_inclusion_vector(vector_path: Path | None) -> None:
    case = _load_vector(vector_path)
    arguments = (
        case["leafIdx"],
        case["treeSize"],
        base64.b64decode(case["leafHash"]),
        _decode_hashes(case["proof"]),
        base64.b64decode(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*arguments)
    else:
        verify_inclusion(*arguments)


@pytest.mark.parametrize("vector_path", _vector_cases("consistency"))
def test_consistency_vector(vector_path: Path | None) -> None:
    case = _load_vector(vector_path)
    arguments = (
        case["size1"],
        case["size2"],
        _decode_hashes(case["proof"]),
        base64.b64decode(case["root1"]),
        base64.b64decode(case["root2"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*arguments)
    else:
        verify_consistency(*arguments)


# --- an independent oracle: RFC 9162 §2.1 definitions written out recursively -----------------


def _reference_root(leaf_hashes: list[bytes]) -> bytes:
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    split = 1 << ((len(leaf_hashes) - 1).bit_length() - 1)
    return node_hash(_reference_root(leaf_hashes[:split]), _reference_root(leaf_hashes[split:]))


def _reference_path(index: int, leaf_hashes: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1."""
    if len(leaf_hashes) == 1:
        return []
    split = 1 << ((len(leaf_hashes) - 1).bit_length() - 1)
    if index < split:
        return [*_reference_path(index, leaf_hashes[:split]), _reference_root(leaf_hashes[split:])]
    return [
        *_reference_path(index - split, leaf_hashes[split:]),
        _reference_root(leaf_hashes[:split]),
    ]


def _reference_subproof(size1: int, leaf_hashes: list[bytes], whole_old_tree: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 §2.1.4.1."""
    if size1 == len(leaf_hashes):
        return [] if whole_old_tree else [_reference_root(leaf_hashes)]
    split = 1 << ((len(leaf_hashes) - 1).bit_length() - 1)
    if size1 <= split:
        return [
            *_reference_subproof(size1, leaf_hashes[:split], whole_old_tree),
            _reference_root(leaf_hashes[split:]),
        ]
    return [
        *_reference_subproof(size1 - split, leaf_hashes[split:], False),
        _reference_root(leaf_hashes[:split]),
    ]


def _stored_perfect_subtrees(leaf_hashes: list[bytes]) -> dict[NodeId, bytes]:
    """What a database would hold: the hash of every perfect subtree, and nothing else."""
    stored = {NodeId(0, index): value for index, value in enumerate(leaf_hashes)}
    level = 0
    while len(leaf_hashes) >> (level + 1):
        for index in range(len(leaf_hashes) >> (level + 1)):
            stored[NodeId(level + 1, index)] = node_hash(
                stored[NodeId(level, 2 * index)], stored[NodeId(level, 2 * index + 1)]
            )
        level += 1
    return stored


def _leaf_hashes(tree_size: int) -> list[bytes]:
    return [leaf_hash(f"entry {index}".encode()) for index in range(tree_size)]


def _flip_bit(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[(bit // 8) % len(flipped)] ^= 1 << (bit % 8)
    return bytes(flipped)


@st.composite
def _tree_and_leaf(draw: st.DrawFn) -> tuple[int, int]:
    tree_size = draw(st.integers(min_value=1, max_value=300))
    return tree_size, draw(st.integers(min_value=0, max_value=tree_size - 1))


@st.composite
def _two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(min_value=1, max_value=300))
    return draw(st.integers(min_value=1, max_value=size2)), size2


@settings(max_examples=300)
@given(_tree_and_leaf(), st.integers(min_value=0, max_value=255))
def test_every_generated_inclusion_proof_verifies_and_a_flipped_bit_fails(
    tree_and_leaf: tuple[int, int], bit: int
) -> None:
    tree_size, leaf_index = tree_and_leaf
    leaves = _leaf_hashes(tree_size)
    stored = _stored_perfect_subtrees(leaves)
    root = root_from_leaf_hashes(leaves)

    # `stored.__getitem__` raises KeyError for any node that is not a stored perfect subtree.
    proof = inclusion_proof(leaf_index, tree_size, stored.__getitem__)

    assert proof == _reference_path(leaf_index, leaves)
    verify_inclusion(leaf_index, tree_size, leaves[leaf_index], proof, root)
    assert root_from_inclusion_proof(leaf_index, tree_size, leaves[leaf_index], proof) == root
    with pytest.raises(ProofError):
        verify_inclusion(leaf_index, tree_size, _flip_bit(leaves[leaf_index], bit), proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_index, tree_size, leaves[leaf_index], proof, _flip_bit(root, bit))
    if proof:
        tampered = list(proof)
        position = bit % len(tampered)
        tampered[position] = _flip_bit(tampered[position], bit)
        with pytest.raises(ProofError):
            verify_inclusion(leaf_index, tree_size, leaves[leaf_index], tampered, root)


@settings(max_examples=300)
@given(_two_sizes(), st.integers(min_value=0, max_value=255))
def test_every_generated_consistency_proof_verifies_and_a_flipped_bit_fails(
    sizes: tuple[int, int], bit: int
) -> None:
    size1, size2 = sizes
    leaves = _leaf_hashes(size2)
    stored = _stored_perfect_subtrees(leaves)
    root1, root2 = root_from_leaf_hashes(leaves[:size1]), root_from_leaf_hashes(leaves)

    proof = consistency_proof(size1, size2, stored.__getitem__)

    assert proof == _reference_subproof(size1, leaves, True)
    verify_consistency(size1, size2, proof, root1, root2)
    if size1 == size2:
        return
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, _flip_bit(root1, bit), root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, _flip_bit(root2, bit))
    tampered = list(proof)
    position = bit % len(tampered)
    tampered[position] = _flip_bit(tampered[position], bit)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, tampered, root1, root2)


@given(st.integers(min_value=1, max_value=300))
def test_root_from_leaf_hashes_matches_the_recursive_definition(tree_size: int) -> None:
    leaves = _leaf_hashes(tree_size)
    assert root_from_leaf_hashes(leaves) == _reference_root(leaves)


def test_inclusion_nodes_for_a_non_perfect_tree_name_the_ephemeral_node() -> None:
    # Tree of 7 leaves, leaf 0: siblings are leaf 1, node (1,1) = leaves 2–3, and the right
    # part [4, 7), which is not perfect and is folded from node (1,2) and leaf 6.
    nodes = inclusion_node_ids(0, 7)
    assert nodes.node_ids == (NodeId(0, 1), NodeId(1, 1), NodeId(1, 2), NodeId(0, 6))
    assert (nodes.ephemeral_begin, nodes.ephemeral_end) == (2, 4)


def test_inclusion_nodes_in_a_perfect_tree_have_no_ephemeral_node() -> None:
    nodes = inclusion_node_ids(5, 8)
    assert nodes.node_ids == (NodeId(0, 4), NodeId(1, 3), NodeId(2, 0))
    assert nodes.ephemeral_begin == nodes.ephemeral_end


def test_consistency_nodes_include_the_old_subtree_only_when_it_is_not_the_whole_old_tree() -> None:
    # RFC 9162 §2.1.4.3 example: PROOF(3, D[7]) = [c, d, g, l] where c = leaf 2, d = leaf 3,
    # g = node (1,0) and l = MTH(D[4:7]).
    nodes = consistency_node_ids(3, 7)
    assert nodes.node_ids == (NodeId(0, 2), NodeId(0, 3), NodeId(1, 0), NodeId(1, 2), NodeId(0, 6))
    # PROOF(4, D[7]) = [l]: the old tree is node (2,0), which the verifier already holds.
    assert consistency_node_ids(4, 7).node_ids == (NodeId(1, 2), NodeId(0, 6))
    # PROOF(6, D[7]) = [i, j, k]: i = leaves 4–5 = node (1,2), j = leaf 6, k = node (2,0).
    assert consistency_node_ids(6, 7).node_ids == (NodeId(1, 2), NodeId(0, 6), NodeId(2, 0))


def test_rehash_rejects_a_wrong_number_or_size_of_hashes() -> None:
    nodes = inclusion_node_ids(0, 7)
    with pytest.raises(ProofError, match="got 3 hashes for 4 proof nodes"):
        nodes.rehash([EMPTY_ROOT] * 3)
    with pytest.raises(ProofError, match="32-byte"):
        nodes.rehash([EMPTY_ROOT, EMPTY_ROOT, EMPTY_ROOT, b"short"])
    assert ProofNodes(()).rehash([]) == []


@pytest.mark.parametrize(("leaf_index", "tree_size"), [(0, 0), (3, 3), (-1, 5), (10, 4)])
def test_inclusion_requests_outside_the_tree_are_rejected(leaf_index: int, tree_size: int) -> None:
    with pytest.raises(ProofError, match="outside a tree"):
        inclusion_node_ids(leaf_index, tree_size)
    with pytest.raises(ProofError, match="outside a tree"):
        verify_inclusion(leaf_index, tree_size, EMPTY_ROOT, [], EMPTY_ROOT)


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 5), (-1, 3), (4, 3)])
def test_invalid_consistency_requests_are_rejected(size1: int, size2: int) -> None:
    with pytest.raises(ProofError):
        consistency_node_ids(size1, size2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, [], EMPTY_ROOT, EMPTY_ROOT)


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    assert consistency_node_ids(5, 5).node_ids == ()
    verify_consistency(5, 5, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(5, 5, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(5, 5, [], EMPTY_ROOT, leaf_hash(b""))


def test_padded_and_truncated_proofs_are_rejected() -> None:
    leaves = _leaf_hashes(11)
    stored = _stored_perfect_subtrees(leaves)
    root = root_from_leaf_hashes(leaves)
    proof = inclusion_proof(4, 11, stored.__getitem__)
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(4, 11, leaves[4], proof[:-1], root)
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(4, 11, leaves[4], [*proof, EMPTY_ROOT], root)
    old_root = root_from_leaf_hashes(leaves[:6])
    consistency = consistency_proof(6, 11, stored.__getitem__)
    with pytest.raises(ProofError, match="too short"):
        verify_consistency(6, 11, consistency[:-1], old_root, root)
    with pytest.raises(ProofError, match="too long"):
        verify_consistency(6, 11, [*consistency, EMPTY_ROOT], old_root, root)
