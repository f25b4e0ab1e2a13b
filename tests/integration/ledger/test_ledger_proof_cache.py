"""Proofs served through a kept proof cache: right after every seal (a partial tile that grew is
never answered from an older read), and right even when a kept pyramid disagrees with the log."""

from __future__ import annotations

import pytest

from ledger.checkpoint import open_checkpoint
from ledger.hashing import NodeId
from ledger.log import append_record
from ledger.note import NoteSigner
from ledger.proof_cache import ProofCache
from ledger.proofs import verify_inclusion
from ledger.sealing import seal_all
from ledger.serving import entry_with_proof
from ledger.tiles import TILE_WIDTH
from market.database import current_engine

SIGNER = NoteSigner.generate("exchange.test/ledger")


async def grow_to(size: int, start: int) -> None:
    async with current_engine().transaction():
        for number in range(start, size):
            await append_record("test.event", actor="system", subject=f"thing:{number}",
                                payload={"n": number})
    await seal_all(SIGNER)


async def assert_proves(leaf_index: int, cache: ProofCache, tree_size: int) -> None:
    proved = await entry_with_proof(leaf_index, cache)
    checkpoint = open_checkpoint(proved.checkpoint.note, SIGNER.verifier)
    assert proved.checkpoint.tree_size == checkpoint.tree_size == tree_size
    verify_inclusion(leaf_index, tree_size, proved.leaf_hash, proved.inclusion_proof,
                     checkpoint.root_hash)


@pytest.mark.usefixtures("db")
async def test_one_cache_serves_right_proofs_as_seals_grow_the_right_edge() -> None:
    cache = ProofCache()
    # Leaf 280 sits in tile 0/1, partial (44 hashes) at size 300, full at 600.
    await grow_to(300, 0)
    for leaf_index in (0, 255, 280, 299):
        await assert_proves(leaf_index, cache, 300)
    assert cache.kept_tiles == {(0, 0)}  # tile 0/1 is partial: only its nodes are kept
    await grow_to(301, 300)
    await assert_proves(280, cache, 301)  # tile 0/1 grew by one hash; the proof follows it
    await grow_to(2 * TILE_WIDTH + 88, 301)
    for leaf_index in (0, 280, 300, 2 * TILE_WIDTH + 87):
        await assert_proves(leaf_index, cache, 2 * TILE_WIDTH + 88)
    assert cache.kept_tiles == {(0, 0), (0, 1)}
    assert cache.tree_size_hint == 2 * TILE_WIDTH + 88


@pytest.mark.usefixtures("db")
async def test_a_kept_pyramid_that_disagrees_with_the_log_is_dropped() -> None:
    await grow_to(TILE_WIDTH + 10, 0)
    cache = ProofCache()
    # As if the process had kept tile 0/0 of another log (a database replaced under it).
    cache.hash_from_tile(NodeId(0, 0), bytes(range(32)) * TILE_WIDTH)
    cache.tree_size_hint = TILE_WIDTH + 10
    await assert_proves(7, cache, TILE_WIDTH + 10)
    assert cache.kept_tiles == {(0, 0)}  # kept again, now from the stored tile
    await assert_proves(200, cache, TILE_WIDTH + 10)
