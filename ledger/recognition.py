"""Register once, trusted everywhere (一地注册,全国互信: issue 7 §2).

A registration code issued by a peer exchange is trusted here only when four independent
facts agree, none of them taken on the peer's word alone:

1. the peer's profile is signed by the key it names, and the consortium admitted the profile's
   chain address under the profile's origin (so the key belongs to that log);
2. the on-chain registry names the peer as the code's issuer, with a leaf index and hash;
3. the entry the peer serves hashes to that leaf hash and is included, by an RFC 9162 proof,
   in a checkpoint signed with the peer's key;
4. that checkpoint's root is the one the peer anchored on chain at that size, or (the peer
   seals more often than it anchors) is proven by an RFC 9162 consistency proof to extend the
   peer's latest anchor, which covers the leaf.

Any other outcome is refused with a `RecognitionError` whose message says which check failed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from web3 import AsyncWeb3

from contracts import load_artifact
from ledger.chain import CodeOnChain
from ledger.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from ledger.entries import EntryError, LedgerRecord
from ledger.hashing import leaf_hash
from ledger.profile import ExchangeProfile, ProfileError, open_profile
from ledger.proofs import ProofError, verify_consistency, verify_inclusion

# ExchangeLedger.MemberStatus: None = 0, Active = 1, Suspended = 2.
MEMBER_NONE = 0
MEMBER_ACTIVE = 1


class RecognitionError(Exception):
    """A peer's profile, code or proof failed a check; the message says which."""


@dataclass(frozen=True)
class MemberOnChain:
    status: int
    latest_tree_size: int
    origin: str


class ConsortiumReader(Protocol):
    """Read-only view of the ExchangeLedger contract for any member, not just this exchange."""

    async def member(self, exchange: str) -> MemberOnChain: ...

    async def lookup_code(self, code: str) -> CodeOnChain | None: ...

    async def anchored_root(self, exchange: str, tree_size: int) -> bytes | None: ...

    async def latest_anchor(self, exchange: str) -> tuple[int, bytes]: ...


class Web3ConsortiumReader:
    """`ConsortiumReader` over JSON-RPC; it holds no key, since reading needs none."""

    def __init__(self, rpc_url: str, contract_address: str, *,
                 request_timeout_s: float = 10.0) -> None:
        self._w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(
            rpc_url, request_kwargs={"timeout": request_timeout_s}))
        self._contract = self._w3.eth.contract(
            address=AsyncWeb3.to_checksum_address(contract_address),
            abi=load_artifact("ExchangeLedger").abi)

    async def close(self) -> None:
        await self._w3.provider.disconnect()

    def _address(self, exchange: str) -> Any:
        return AsyncWeb3.to_checksum_address(exchange)

    async def member(self, exchange: str) -> MemberOnChain:
        status, latest, _admitted_at, origin = await self._contract.functions.members(
            self._address(exchange)).call()
        return MemberOnChain(int(status), int(latest), str(origin))

    async def lookup_code(self, code: str) -> CodeOnChain | None:
        exchange, leaf_index, hashed, registered = await self._contract.functions.lookupCode(
            code).call()
        return CodeOnChain(str(exchange), int(leaf_index), bytes(hashed)) if registered else None

    async def anchored_root(self, exchange: str, tree_size: int) -> bytes | None:
        root = bytes(await self._contract.functions.anchoredRoot(
            self._address(exchange), tree_size).call())
        return None if root == bytes(32) else root

    async def latest_anchor(self, exchange: str) -> tuple[int, bytes]:
        size, root = await self._contract.functions.latestAnchor(self._address(exchange)).call()
        return int(size), bytes(root)


@dataclass(frozen=True)
class RecognisedCode:
    """A peer's code with everything that proved it, enough to record or show the evidence."""

    code: str
    exchange: str
    origin: str
    leaf_index: int
    leaf_hash: bytes
    entry: bytes
    record: LedgerRecord
    checkpoint: Checkpoint
    checkpoint_note: str
    anchored_tree_size: int


def _same_address(first: str, second: str) -> bool:
    return first.lower() == second.lower()


async def verify_peer_profile(note: str, reader: ConsortiumReader, *,
                              expected_vkey: str | None = None) -> ExchangeProfile:
    """Check 1: the signed profile, and its chain address admitted under its origin."""
    try:
        profile = open_profile(note, expected_vkey=expected_vkey)
    except ProfileError as error:
        raise RecognitionError(f"peer profile refused: {error}") from error
    if profile.chain_address is None:
        raise RecognitionError(f"peer {profile.origin!r} names no chain address: it cannot be "
                               "a consortium member")
    member = await reader.member(profile.chain_address)
    if member.status == MEMBER_NONE:
        raise RecognitionError(f"peer {profile.origin!r}: {profile.chain_address} is not a "
                               "consortium member")
    if member.origin != profile.origin:
        raise RecognitionError(
            f"peer profile claims origin {profile.origin!r} but the consortium admitted "
            f"{profile.chain_address} under {member.origin!r}")
    return profile


async def fetch_from_peer(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """A 200 answer from a peer, or a `RecognitionError` saying what went wrong."""
    try:
        response = await client.get(url)
    except httpx.HTTPError as error:
        raise RecognitionError(f"GET {url}: {type(error).__name__}: {error}") from error
    if response.status_code != 200:
        raise RecognitionError(f"GET {url}: HTTP {response.status_code}")
    return response


async def _get_json(client: httpx.AsyncClient, url: str) -> Any:
    response = await fetch_from_peer(client, url)
    try:
        return response.json()
    except ValueError as error:
        raise RecognitionError(f"GET {url}: not JSON") from error


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise RecognitionError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise RecognitionError(f"{what} is not valid base64") from error


def _names_code(record: LedgerRecord, code: str) -> bool:
    """The entry must be about this code: a peer must not point the registry at some other
    (valid, included) leaf of its log."""
    return record.payload.get("code") == code


@dataclass(frozen=True)
class ProvenEntry:
    """A leaf of a peer's log with what proved it: included in a checkpoint its key signed."""

    leaf_index: int
    entry: bytes
    leaf_hash: bytes
    record: LedgerRecord
    checkpoint: Checkpoint
    checkpoint_note: str


async def fetch_proven_entry(client: httpx.AsyncClient, profile: ExchangeProfile,
                             leaf_index: int) -> ProvenEntry:
    """Fetch leaf `leaf_index` of the peer's log and check its inclusion proof against a
    checkpoint signed with the profile's key (not yet against the chain: see `recognise_code`)."""
    base = profile.api_base_url.rstrip("/")
    document = await _get_json(client, f"{base}/ledger/entries/{leaf_index}")
    if not isinstance(document, dict):
        raise RecognitionError("the peer's entry answer is not a JSON object")
    entry = _b64(document.get("entry"), "entry")
    proof = document.get("inclusion_proof")
    if not isinstance(proof, list):
        raise RecognitionError("the peer's entry answer has no inclusion proof list")
    proof_hashes = [_b64(element, "inclusion proof element") for element in proof]
    note = document.get("checkpoint")
    if not isinstance(note, str):
        raise RecognitionError("the peer's entry answer has no checkpoint")
    hashed = leaf_hash(entry)
    try:
        record = LedgerRecord.from_canonical_json(entry)
    except EntryError as error:
        raise RecognitionError(f"leaf {leaf_index} is not a ledger record: {error}") from error
    try:
        # Only what the peer's key signed counts; the JSON's own size and root are ignored.
        checkpoint = open_checkpoint(note, profile.verifier, expected_origin=profile.origin)
    except CheckpointError as error:
        raise RecognitionError(f"the peer's checkpoint: {error}") from error
    try:
        verify_inclusion(leaf_index, checkpoint.tree_size, hashed, proof_hashes,
                         checkpoint.root_hash)
    except ProofError as error:
        raise RecognitionError(f"inclusion of leaf {leaf_index}: {error}") from error
    return ProvenEntry(leaf_index, entry, hashed, record, checkpoint, note)


async def recognise_code(client: httpx.AsyncClient, profile: ExchangeProfile, code: str,
                         reader: ConsortiumReader) -> RecognisedCode:
    """Checks 2–4 for `code`, against a profile already checked by `verify_peer_profile`."""
    if profile.chain_address is None:
        raise RecognitionError(f"peer {profile.origin!r} names no chain address")
    on_chain = await reader.lookup_code(code)
    if on_chain is None:
        raise RecognitionError(f"code {code} is not in the consortium's on-chain registry")
    if not _same_address(on_chain.exchange, profile.chain_address):
        raise RecognitionError(f"code {code} was registered by {on_chain.exchange}, not by "
                               f"peer {profile.origin!r} ({profile.chain_address})")

    base = profile.api_base_url.rstrip("/")
    proven = await fetch_proven_entry(client, profile, on_chain.leaf_index)
    if proven.leaf_hash != on_chain.leaf_hash:
        raise RecognitionError(
            f"the peer serves leaf {on_chain.leaf_index} hashing to {proven.leaf_hash.hex()}, "
            f"but the chain registered {code} with leaf hash {on_chain.leaf_hash.hex()}")
    if not _names_code(proven.record, code):
        raise RecognitionError(f"leaf {on_chain.leaf_index} ({proven.record.kind}) does not "
                               f"record code {code}")
    anchored_size = await _check_anchor(client, base, profile.chain_address,
                                        checkpoint=proven.checkpoint,
                                        leaf_index=on_chain.leaf_index, reader=reader)
    return RecognisedCode(code, profile.chain_address, profile.origin, on_chain.leaf_index,
                          proven.leaf_hash, proven.entry, proven.record, proven.checkpoint,
                          proven.checkpoint_note, anchored_size)


async def _check_anchor(client: httpx.AsyncClient, base: str, exchange: str, *,
                        checkpoint: Checkpoint, leaf_index: int,
                        reader: ConsortiumReader) -> int:
    """Check 4; returns the anchored tree size the checkpoint was tied to."""
    size = checkpoint.tree_size
    anchored = await reader.anchored_root(exchange, size)
    if anchored is not None:
        if anchored != checkpoint.root_hash:
            # Two roots for one size under the peer's own key and account: a forked history.
            raise RecognitionError(
                f"the peer signed root {checkpoint.root_hash.hex()} at size {size} but "
                f"anchored {anchored.hex()} there: its history was rewritten")
        return size
    latest_size, latest_root = await reader.latest_anchor(exchange)
    if latest_size == 0 or leaf_index >= latest_size:
        raise RecognitionError(
            f"leaf {leaf_index} is not covered by an on-chain anchor of the peer yet "
            f"(latest anchored size {latest_size}); try again after it anchors")
    if latest_size > size:
        raise RecognitionError(
            f"the peer serves checkpoint size {size}, older than its anchored size "
            f"{latest_size}; a stale or rolled-back view")
    try:
        await verify_extension(client, base, older_size=latest_size, older_root=latest_root,
                               newer=checkpoint)
    except RecognitionError as error:
        raise RecognitionError(f"the peer's checkpoint does not extend its anchor at size "
                               f"{latest_size}: {error}") from error
    return latest_size


async def verify_extension(client: httpx.AsyncClient, base: str, *, older_size: int,
                           older_root: bytes, newer: Checkpoint) -> None:
    """Check, with an RFC 9162 consistency proof the peer serves, that its tree at
    `older_size` (root `older_root`) is a prefix of the tree `newer` signs."""
    if older_size == newer.tree_size:
        if older_root != newer.root_hash:
            raise RecognitionError(f"two different roots for size {older_size}")
        return
    url = f"{base}/ledger/consistency?from={older_size}&to={newer.tree_size}"
    document = await _get_json(client, url)
    if not isinstance(document, dict) or not isinstance(document.get("proof"), list):
        raise RecognitionError(f"GET {url}: no proof list")
    proof = [_b64(element, "consistency proof element") for element in document["proof"]]
    try:
        verify_consistency(older_size, newer.tree_size, proof, older_root, newer.root_hash)
    except ProofError as error:
        raise RecognitionError(str(error)) from error


def evidence(recognised: RecognisedCode) -> dict[str, Any]:
    """A JSON-ready summary of what proved a recognised code (for logs and records)."""
    return {"code": recognised.code, "exchange": recognised.exchange,
            "origin": recognised.origin, "leaf_index": recognised.leaf_index,
            "leaf_hash": recognised.leaf_hash.hex(),
            "tree_size": recognised.checkpoint.tree_size,
            "root_hash": recognised.checkpoint.root_hash.hex(),
            "anchored_tree_size": recognised.anchored_tree_size,
            "record_kind": recognised.record.kind,
            "entry": json.loads(recognised.entry)}
