"""Verify a log from its public endpoints alone (C2SP tlog-tiles over HTTP).

Trusts nothing the server computes: it checks the checkpoint's signature with the given
verifier key (or, trust on first use, the one the log serves), downloads every entry bundle,
recomputes every leaf hash, every tile and the root, and compares them with what is served and
signed. Given an earlier checkpoint it also proves the log only grew since (the root at the
earlier size recomputed from the entries, and the server's RFC 9162 consistency proof).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from ledger.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from ledger.entries import EntryError, LedgerRecord
from ledger.hashing import leaf_hash, root_from_leaf_hashes
from ledger.note import NoteError, NoteVerifier
from ledger.proofs import ProofError, verify_consistency
from ledger.tiles import TILE_WIDTH, TileError, TileRef, decode_entry_bundle, tiles_for_growth
from ledger.tree_store import integrate

CONCURRENT_FETCHES = 8


class VerificationError(Exception):
    """The log failed a check; the message says which and where."""


@dataclass(frozen=True)
class VerifyResult:
    origin: str
    tree_size: int
    root_hash: bytes
    checkpoint_note: str
    vkey: str
    tiles_checked: int
    consistent_with_previous: int | None  # the earlier tree size proven consistent, if any


Progress = Callable[[int, int], None]


async def verify_log(client: httpx.AsyncClient, base_url: str, *, vkey: str | None = None,
                     previous_checkpoint: str | None = None,
                     progress: Progress | None = None) -> VerifyResult:
    prefix = base_url.rstrip("/")
    vkey_text = (vkey or await _get_text(client, f"{prefix}/vkey")).strip()
    try:
        verifier = NoteVerifier.from_vkey(vkey_text)
    except (NoteError, ValueError) as error:
        raise VerificationError(f"verifier key: {error}") from error
    note = await _get_text(client, f"{prefix}/checkpoint")
    checkpoint = _open(note, verifier, "served checkpoint")
    previous = None if previous_checkpoint is None else _open(previous_checkpoint, verifier,
                                                               "previous checkpoint")
    if previous is not None and previous.tree_size > checkpoint.tree_size:
        raise VerificationError(f"the log shrank: it once signed size {previous.tree_size}, now "
                                f"{checkpoint.tree_size}")

    leaf_hashes = await _download_leaf_hashes(client, prefix, checkpoint.tree_size, progress)
    root = root_from_leaf_hashes(leaf_hashes)
    if root != checkpoint.root_hash:
        raise VerificationError(
            f"the entries hash to root {root.hex()}, the checkpoint signs "
            f"{checkpoint.root_hash.hex()} (size {checkpoint.tree_size})")
    tiles_checked = await _check_tiles(client, prefix, leaf_hashes)

    consistent_with = None
    if previous is not None and previous.tree_size > 0:
        await _check_previous(client, prefix, previous, checkpoint, leaf_hashes)
        consistent_with = previous.tree_size
    return VerifyResult(checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash, note,
                        vkey_text, tiles_checked, consistent_with)


def _open(note: str, verifier: NoteVerifier, what: str) -> Checkpoint:
    try:
        return open_checkpoint(note, verifier)
    except CheckpointError as error:
        raise VerificationError(f"{what}: {error}") from error


async def _get(client: httpx.AsyncClient, url: str) -> bytes:
    try:
        response = await client.get(url)
    except httpx.HTTPError as error:
        raise VerificationError(f"GET {url}: {type(error).__name__}: {error}") from error
    if response.status_code != 200:
        raise VerificationError(f"GET {url}: HTTP {response.status_code}")
    return response.content


async def _get_text(client: httpx.AsyncClient, url: str) -> str:
    try:
        return (await _get(client, url)).decode("utf-8")
    except UnicodeDecodeError as error:
        raise VerificationError(f"GET {url}: not UTF-8 text") from error


def _fetcher(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[bytes]]:
    return lambda: _get(client, url)


async def _bounded(jobs: Sequence[Callable[[], Awaitable[bytes]]]) -> list[bytes]:
    semaphore = asyncio.Semaphore(CONCURRENT_FETCHES)

    async def run(job: Callable[[], Awaitable[bytes]]) -> bytes:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


async def _download_leaf_hashes(client: httpx.AsyncClient, prefix: str, tree_size: int,
                                progress: Progress | None) -> list[bytes]:
    full, partial = divmod(tree_size, TILE_WIDTH)
    bundles = [TileRef(0, index, is_entry_bundle=True) for index in range(full)]
    if partial:
        bundles.append(TileRef(0, full, partial, is_entry_bundle=True))
    leaf_hashes: list[bytes] = []
    chunk = CONCURRENT_FETCHES * 4
    for start in range(0, len(bundles), chunk):
        group = bundles[start:start + chunk]
        bodies = await _bounded([_fetcher(client, f"{prefix}/{bundle.path}") for bundle in group])
        for bundle, body in zip(group, bodies, strict=True):
            try:
                entries = decode_entry_bundle(body, bundle.width)
            except TileError as error:
                raise VerificationError(f"{bundle.path}: {error}") from error
            for offset, entry in enumerate(entries):
                index = bundle.index * TILE_WIDTH + offset
                try:
                    record = LedgerRecord.from_canonical_json(entry)
                except EntryError as error:
                    raise VerificationError(f"entry {index}: {error}") from error
                if record.sequence != index:
                    raise VerificationError(f"entry {index} carries sequence {record.sequence}")
                leaf_hashes.append(leaf_hash(entry))
        if progress is not None:
            progress(len(leaf_hashes), tree_size)
    return leaf_hashes


async def _check_tiles(client: httpx.AsyncClient, prefix: str,
                       leaf_hashes: Sequence[bytes]) -> int:
    """Every served hash tile must equal the one recomputed from the entries."""
    expected = integrate(0, leaf_hashes, {})
    tiles = [tile for tile in tiles_for_growth(0, len(leaf_hashes)) if not tile.is_entry_bundle]
    bodies = await _bounded([_fetcher(client, f"{prefix}/{tile.path}") for tile in tiles])
    for tile, body in zip(tiles, bodies, strict=True):
        if body != expected[(tile.level, tile.index)]:
            raise VerificationError(f"{tile.path} differs from the tile the entries produce")
    return len(tiles)


async def _check_previous(client: httpx.AsyncClient, prefix: str, previous: Checkpoint,
                          current: Checkpoint, leaf_hashes: Sequence[bytes]) -> None:
    old_root = root_from_leaf_hashes(leaf_hashes[:previous.tree_size])
    if old_root != previous.root_hash:
        raise VerificationError(
            f"the log was rewritten: the first {previous.tree_size} entries no longer hash to "
            "the root signed earlier")
    if previous.tree_size == current.tree_size:
        return
    url = f"{prefix}/consistency?from={previous.tree_size}&to={current.tree_size}"
    try:
        document = httpx.Response(200, content=await _get(client, url)).json()
        proof = [base64.b64decode(element, validate=True) for element in document["proof"]]
        verify_consistency(previous.tree_size, current.tree_size, proof, previous.root_hash,
                           current.root_hash)
    except (ProofError, ValueError, KeyError, TypeError) as error:
        raise VerificationError(f"consistency proof {previous.tree_size} → "
                                f"{current.tree_size}: {error}") from error
