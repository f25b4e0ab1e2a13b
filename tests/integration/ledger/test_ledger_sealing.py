"""Sealing: leaves become tiles and a signed checkpoint; proofs served from the stored tree
verify against it; sealing is idempotent, resumable and single-writer."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ledger.checkpoint import open_checkpoint
from ledger.hashing import EMPTY_ROOT, root_from_leaf_hashes
from ledger.log import append_record
from ledger.note import NoteSigner
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.schema import LedgerCheckpoint
from ledger.sealing import SealingError, seal, seal_all
from ledger.serving import (
    LedgerLookupError,
    consistency_proof,
    entry_with_proof,
    latest_checkpoint,
    read_entry_bundle,
    read_tile,
)
from ledger.tables import LedgerLeaf
from ledger.tiles import TileRef, decode_entry_bundle, decode_hash_tile
from market.database import current_engine

SIGNER = NoteSigner.generate("exchange.test/ledger")


async def append_many(count: int, start: int = 0) -> None:
    async with current_engine().transaction():
        for number in range(start, start + count):
            await append_record("test.event", actor="system", subject=f"thing:{number}",
                                payload={"n": number})


async def all_leaf_hashes() -> list[bytes]:
    rows = await LedgerLeaf.select(LedgerLeaf.leaf_hash).order_by(LedgerLeaf.leaf_index).run()
    return [row["leaf_hash"] for row in rows]


async def test_an_empty_log_seals_a_signed_empty_checkpoint(db: str) -> None:
    result = await seal(SIGNER)
    assert result is not None
    assert (result.tree_size, result.root_hash, result.leaves_added) == (0, EMPTY_ROOT, 0)
    stored = await latest_checkpoint()
    assert open_checkpoint(stored.note, SIGNER.verifier).tree_size == 0
    # Nothing new: no second checkpoint.
    again = await seal(SIGNER)
    assert again is not None
    assert again.checkpoint_note is None


@pytest.mark.parametrize("batches", [[1], [3, 4], [255, 1, 300], [256 * 2 + 7, 1000]])
async def test_sealed_roots_match_the_rfc6962_root_and_tiles_the_leaves(
        db: str, batches: list[int]) -> None:
    appended = 0
    for batch in batches:
        await append_many(batch, appended)
        appended += batch
        result = await seal(SIGNER, max_leaves=10_000)
        assert result is not None
        assert result.tree_size == appended
        assert result.root_hash == root_from_leaf_hashes(await all_leaf_hashes())
        checkpoint = open_checkpoint(result.checkpoint_note or "", SIGNER.verifier)
        assert (checkpoint.tree_size, checkpoint.root_hash) == (appended, result.root_hash)
    hashes = await all_leaf_hashes()
    full, partial = divmod(appended, 256)
    if partial:
        tile = await read_tile(TileRef(0, full, partial))
        assert decode_hash_tile(tile, partial) == hashes[full * 256:]
        bundle = decode_entry_bundle(await read_entry_bundle(TileRef(0, full, partial,
                                                                     is_entry_bundle=True)))
        assert len(bundle) == partial
    if full:
        assert decode_hash_tile(await read_tile(TileRef(0, 0)), 256) == hashes[:256]
        level_one = decode_hash_tile(await read_tile(TileRef(1, 0, full)), full)
        assert level_one[0] == root_from_leaf_hashes(hashes[:256])


async def test_inclusion_and_consistency_proofs_verify_against_checkpoints(db: str) -> None:
    await append_many(70)
    first = await seal(SIGNER)
    await append_many(600, 70)
    second = await seal(SIGNER)
    assert first is not None
    assert second is not None
    hashes = await all_leaf_hashes()
    for index in (0, 1, 69, 255, 256, 511, 669):
        proved = await entry_with_proof(index)
        assert proved.checkpoint.tree_size == 670
        verify_inclusion(index, 670, hashes[index], proved.inclusion_proof, second.root_hash)
    for size in (1, 7, 64, 70, 256, 669, 670):
        proof = await consistency_proof(size, None)
        assert proof.first_root == root_from_leaf_hashes(hashes[:size])
        verify_consistency(size, 670, proof.proof, proof.first_root, second.root_hash)
    with pytest.raises(LedgerLookupError):
        await entry_with_proof(670)
    with pytest.raises(LedgerLookupError):
        await read_tile(TileRef(0, 2, 159))


async def test_unsealed_leaves_are_not_served(db: str) -> None:
    await append_many(3)
    await seal(SIGNER)
    await append_many(2, 3)
    with pytest.raises(LedgerLookupError):
        await entry_with_proof(3)
    with pytest.raises(LedgerLookupError):
        await read_tile(TileRef(0, 0, 5))
    assert await read_tile(TileRef(0, 0, 3))


async def test_large_backlogs_seal_in_bounded_batches(db: str) -> None:
    await append_many(600)
    result = await seal_all(SIGNER, max_leaves=256)
    assert result is not None
    assert result.tree_size == 600
    rows = await LedgerCheckpoint.select(LedgerCheckpoint.tree_size).order_by(
        LedgerCheckpoint.tree_size).run()
    sizes = [row["tree_size"] for row in rows]
    assert sizes == [256, 512, 600]


async def test_concurrent_sealers_do_not_collide(db: str) -> None:
    await append_many(50)
    results = await asyncio.gather(*(seal(SIGNER) for _ in range(4)))
    sealed = [result for result in results if result is not None and result.leaves_added]
    assert len(sealed) == 1
    assert (await latest_checkpoint()).tree_size == 50


async def test_a_leaf_changed_before_sealing_is_refused(db: str) -> None:
    await append_many(2)
    connection = await asyncpg.connect(db)
    try:
        await connection.execute("ALTER TABLE ledger_leaves DISABLE TRIGGER USER")
        await connection.execute("UPDATE ledger_leaves SET entry = '\\x7b7d' WHERE leaf_index = 1")
        await connection.execute("ALTER TABLE ledger_leaves ENABLE TRIGGER USER")
    finally:
        await connection.close()
    with pytest.raises(SealingError, match="leaf 1"):
        await seal(SIGNER)
    with pytest.raises(LedgerLookupError):
        await latest_checkpoint()


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_checkpoints SET note = 'forged'",
    "DELETE FROM ledger_checkpoints",
    "DELETE FROM ledger_tiles",
    "UPDATE ledger_tiles SET hashes = substring(hashes FROM 33) || hashes",
])
async def test_checkpoints_and_tiles_resist_rewriting(db: str, statement: str) -> None:
    await append_many(3)
    await seal(SIGNER)
    connection = await asyncpg.connect(db)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(statement)
    finally:
        await connection.close()
