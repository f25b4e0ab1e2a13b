"""A log held in memory, signed with a given key: the peer side of witnessing tests."""

from __future__ import annotations

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.hashing import leaf_hash, root_from_leaf_hashes
from ledger.note import NoteSigner
from ledger.proofs import consistency_proof
from ledger.tree_store import integrate, node_from_tiles
from ledger.witness import WitnessedCheckpoint


class MemoryLog:
    def __init__(self, signer: NoteSigner, entries: list[bytes]) -> None:
        self.signer = signer
        self.hashes = [leaf_hash(entry) for entry in entries]

    def root(self, size: int) -> bytes:
        return root_from_leaf_hashes(self.hashes[:size])

    def note(self, size: int, signer: NoteSigner | None = None) -> str:
        signer = signer or self.signer
        return sign_checkpoint(Checkpoint(signer.name, size, self.root(size)), signer)

    def witnessed(self, size: int) -> WitnessedCheckpoint:
        return WitnessedCheckpoint(size, self.root(size), self.note(size))

    def proof(self, first: int, second: int) -> tuple[bytes, ...]:
        tiles = integrate(0, self.hashes[:second], {})
        return tuple(consistency_proof(first, second, lambda node: node_from_tiles(tiles, node)))


def entries(count: int, tag: str = "") -> list[bytes]:
    """`count` entries; with a `tag`, those from index 5 on differ (a rewritten history)."""
    return [f"entry {index}{tag if index >= 5 else ''}".encode() for index in range(count)]
