"""Checking a proof bundle (ledger.bundles) with nothing but the bundle and, optionally, the
keys one trusts and a chain node.

Offline, every claim is checked against signatures and hashes: the profile's signature, the
checkpoint's signature by the profile's key, trusted witnesses' cosignatures, the entry's leaf
hash and inclusion, the anchor transaction (its hash, its sender recovered from its signature,
its call `anchor(treeSize, root)` to the profile's contract on the stated chain), the receipt's
`Anchored` event, and the consistency of the anchored tree with the checkpoint's. Only the
chain's current state needs a node: with one, the anchor is also read back from the contract
and the receipt from the chain.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from ledger.bundles import ANCHORED_EVENT_TOPIC, BUNDLE_FORMAT, AnchorReceipts
from ledger.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from ledger.cosignature import CosignatureError, CosignatureVerifier, verified_cosignatures
from ledger.entries import EntryError, LedgerRecord
from ledger.hashing import leaf_hash
from ledger.profile import ExchangeProfile, ProfileError, open_profile
from ledger.proofs import ProofError, verify_consistency, verify_inclusion
from ledger.recognition import ConsortiumReader

ANCHOR_SELECTOR = keccak(text="anchor(uint64,bytes32)")[:4]


class BundleCheckError(Exception):
    """One check of a bundle failed; the message says why."""


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Bundle:
    """A bundle's fields, decoded but not yet trusted."""

    leaf_index: int
    entry: bytes
    inclusion_proof: list[bytes]
    checkpoint_note: str
    profile_note: str
    chain_id: int
    contract: str
    anchored_size: int
    anchored_root: bytes
    tx_hash: bytes
    block_number: int
    raw_transaction: bytes
    log: dict[str, Any]
    anchor_consistency_proof: list[bytes]


def _base64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleCheckError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BundleCheckError(f"{what} is not valid base64") from error


def _hex(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise BundleCheckError(f"{what} is not a 0x-hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as error:
        raise BundleCheckError(f"{what} is not valid hex") from error


def _integer(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleCheckError(f"{what} is not a non-negative integer")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise BundleCheckError(f"{what} is not a string")
    return value


def parse_bundle(document: object) -> Bundle:
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise BundleCheckError(f"not a {BUNDLE_FORMAT} document")
    anchor = document.get("anchor")
    if not isinstance(anchor, dict) or not isinstance(anchor.get("log"), dict):
        raise BundleCheckError("the bundle has no anchor with a receipt log")
    proofs = {key: document.get(key) for key in ("inclusion_proof", "anchor_consistency_proof")}
    for key, value in proofs.items():
        if not isinstance(value, list):
            raise BundleCheckError(f"{key} is not a list")
    return Bundle(
        leaf_index=_integer(document.get("leaf_index"), "leaf_index"),
        entry=_base64(document.get("entry"), "entry"),
        inclusion_proof=[_base64(item, "inclusion proof element")
                         for item in document["inclusion_proof"]],
        checkpoint_note=_text(document.get("checkpoint"), "checkpoint"),
        profile_note=_text(document.get("profile"), "profile"),
        chain_id=_integer(anchor.get("chain_id"), "anchor.chain_id"),
        contract=_text(anchor.get("contract"), "anchor.contract"),
        anchored_size=_integer(anchor.get("tree_size"), "anchor.tree_size"),
        anchored_root=_base64(anchor.get("root_hash"), "anchor.root_hash"),
        tx_hash=_hex(anchor.get("tx_hash"), "anchor.tx_hash"),
        block_number=_integer(anchor.get("block_number"), "anchor.block_number"),
        raw_transaction=_hex(anchor.get("raw_transaction"), "anchor.raw_transaction"),
        log=anchor["log"],
        anchor_consistency_proof=[_base64(item, "anchor consistency proof element")
                                  for item in document["anchor_consistency_proof"]])


def _same_address(first: str | None, second: str | None) -> bool:
    return first is not None and second is not None and first.lower() == second.lower()


class _Verification:
    """The offline checks in order; each one leans on those before it."""

    def __init__(self, bundle: Bundle, trusted_vkey: str | None,
                 trusted_witnesses: Sequence[CosignatureVerifier]) -> None:
        self.bundle = bundle
        self.trusted_vkey = trusted_vkey
        self.trusted_witnesses = trusted_witnesses
        self.profile: ExchangeProfile | None = None
        self.checkpoint: Checkpoint | None = None
        self.sender: str | None = None

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        return [("exchange profile", self.check_profile),
                ("checkpoint signature", self.check_checkpoint),
                ("cosignatures", self.check_cosignatures),
                ("entry", self.check_entry),
                ("inclusion proof", self.check_inclusion),
                ("anchor transaction", self.check_transaction),
                ("anchor event", self.check_event),
                ("anchor consistency", self.check_anchor_consistency)]

    def check_profile(self) -> str:
        try:
            self.profile = open_profile(self.bundle.profile_note,
                                        expected_vkey=self.trusted_vkey)
        except ProfileError as error:
            raise BundleCheckError(str(error)) from error
        pinned = "pinned key" if self.trusted_vkey else "the key it names (pass --trusted-vkey)"
        return f"{self.profile.name} ({self.profile.origin}) signed by {pinned}"

    def check_checkpoint(self) -> str:
        assert self.profile is not None
        try:
            self.checkpoint = open_checkpoint(self.bundle.checkpoint_note, self.profile.verifier,
                                              expected_origin=self.profile.origin)
        except CheckpointError as error:
            raise BundleCheckError(str(error)) from error
        return f"size {self.checkpoint.tree_size}, root {self.checkpoint.root_hash.hex()}"

    def check_cosignatures(self) -> str:
        if not self.trusted_witnesses:
            return "no trusted witness given (pass --trusted-witness): none checked"
        try:
            _, found = verified_cosignatures(self.bundle.checkpoint_note, self.trusted_witnesses)
        except CosignatureError as error:
            raise BundleCheckError(str(error)) from error
        names = {cosignature.name for cosignature in found}
        missing = [witness.name for witness in self.trusted_witnesses
                   if witness.name not in names]
        if missing:
            raise BundleCheckError(f"no cosignature by trusted witness {', '.join(missing)}")
        return f"cosigned by {', '.join(sorted(names))}"

    def check_entry(self) -> str:
        try:
            record = LedgerRecord.from_canonical_json(self.bundle.entry)
        except EntryError as error:
            raise BundleCheckError(f"not a ledger record: {error}") from error
        if record.sequence != self.bundle.leaf_index:
            raise BundleCheckError(f"the record's sequence {record.sequence} is not leaf "
                              f"{self.bundle.leaf_index}")
        return f"{record.kind} recorded at {record.recorded_at.isoformat()}"

    def check_inclusion(self) -> str:
        assert self.checkpoint is not None
        try:
            verify_inclusion(self.bundle.leaf_index, self.checkpoint.tree_size,
                             leaf_hash(self.bundle.entry), self.bundle.inclusion_proof,
                             self.checkpoint.root_hash)
        except ProofError as error:
            raise BundleCheckError(str(error)) from error
        return f"leaf {self.bundle.leaf_index} is in the tree of size {self.checkpoint.tree_size}"

    def check_transaction(self) -> str:
        assert self.profile is not None
        raw, bundle = self.bundle.raw_transaction, self.bundle
        if keccak(raw) != bundle.tx_hash:
            raise BundleCheckError("the raw transaction does not hash to the stated tx hash")
        fields = _transaction_fields(raw)
        recipient = fields.get("to")
        recipient = "0x" + bytes(recipient).hex() if isinstance(recipient, bytes) else recipient
        self.sender = str(Account.recover_transaction(raw))
        if not _same_address(self.sender, self.profile.chain_address):
            raise BundleCheckError(f"sent by {self.sender}, not the profile's chain address "
                              f"{self.profile.chain_address}")
        if not _same_address(recipient, bundle.contract) or \
                not _same_address(bundle.contract, self.profile.ledger_contract):
            raise BundleCheckError(f"sent to {recipient}, not the profile's ledger contract "
                              f"{self.profile.ledger_contract}")
        if fields.get("chainId") != bundle.chain_id:
            raise BundleCheckError(f"signed for chain {fields.get('chainId')}, not "
                                   f"{bundle.chain_id}")
        calldata = bytes(fields.get("data", b""))
        if calldata[:4] != ANCHOR_SELECTOR:
            raise BundleCheckError("the transaction does not call anchor(uint64,bytes32)")
        size, root = abi_decode(["uint64", "bytes32"], calldata[4:])
        if (int(size), bytes(root)) != (bundle.anchored_size, bundle.anchored_root):
            raise BundleCheckError(f"the transaction anchors size {size}, root {bytes(root).hex()}")
        return f"anchor({size}, {bytes(root).hex()}) sent by {self.sender}"

    def check_event(self) -> str:
        assert self.sender is not None
        log, bundle = self.bundle.log, self.bundle
        topics = [_hex(topic, "log topic") for topic in log.get("topics", [])]
        if not _same_address(log.get("address"), bundle.contract):
            raise BundleCheckError(f"the log comes from {log.get('address')}, not the contract")
        if len(topics) != 2 or topics[0] != ANCHORED_EVENT_TOPIC or \
                topics[1][-20:] != bytes.fromhex(self.sender[2:]):
            raise BundleCheckError("the log is not Anchored(exchange = the sender, …)")
        size, root = abi_decode(["uint64", "bytes32"], _hex(log.get("data"), "log data"))
        if (int(size), bytes(root)) != (bundle.anchored_size, bundle.anchored_root):
            raise BundleCheckError(f"the event records size {size}, root {bytes(root).hex()}")
        if _hex(log.get("transaction_hash"), "log transaction hash") != bundle.tx_hash or \
                log.get("block_number") != bundle.block_number:
            raise BundleCheckError("the log belongs to another transaction or block")
        return f"Anchored({self.sender}, {size}) in block {bundle.block_number}"

    def check_anchor_consistency(self) -> str:
        assert self.checkpoint is not None
        bundle, checkpoint = self.bundle, self.checkpoint
        if not bundle.leaf_index < bundle.anchored_size <= checkpoint.tree_size:
            raise BundleCheckError(f"anchored size {bundle.anchored_size} does not cover leaf "
                              f"{bundle.leaf_index} within the checkpoint's size "
                              f"{checkpoint.tree_size}")
        try:
            verify_consistency(bundle.anchored_size, checkpoint.tree_size,
                               bundle.anchor_consistency_proof, bundle.anchored_root,
                               checkpoint.root_hash)
        except ProofError as error:
            raise BundleCheckError(str(error)) from error
        return (f"the checkpoint extends the anchored tree of size {bundle.anchored_size}"
                if bundle.anchored_size < checkpoint.tree_size else "the anchored tree itself")


def _transaction_fields(raw: bytes) -> dict[str, Any]:
    try:
        if raw and raw[0] <= 0x7F:  # EIP-2718 typed transaction
            return dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())
        return dict(LegacyTransaction.from_bytes(raw).as_dict())
    except Exception as error:  # any decoding failure of untrusted bytes is the same finding
        raise BundleCheckError(f"the raw transaction does not decode: {error}") from error


def _run(checks: Sequence[tuple[str, Callable[[], str]]], results: list[Check]) -> bool:
    for name, check in checks:
        try:
            results.append(Check(name, True, check()))
        except BundleCheckError as error:
            results.append(Check(name, False, str(error)))
            return False
    return True


def verify_bundle(document: object, *, trusted_vkey: str | None = None,
                  trusted_witnesses: Sequence[CosignatureVerifier] = ()) -> list[Check]:
    """Every offline check in order, stopping at the first that fails (the last result)."""
    results: list[Check] = []
    try:
        bundle = parse_bundle(document)
    except BundleCheckError as error:
        return [Check("bundle format", False, str(error))]
    results.append(Check("bundle format", True, f"leaf {bundle.leaf_index}"))
    _run(_Verification(bundle, trusted_vkey, trusted_witnesses).checks(), results)
    return results


async def verify_on_chain(document: object, reader: ConsortiumReader,
                          receipts: AnchorReceipts) -> Check:
    """The anchor as the chain holds it now: the contract's root at the anchored size, and the
    receipt's event. Call after `verify_bundle` passed."""
    bundle = parse_bundle(document)
    sender = str(Account.recover_transaction(bundle.raw_transaction))
    failure = (await _on_chain_root(reader, sender, bundle)
               or await _on_chain_event(receipts, bundle))
    if failure is not None:
        return Check("anchor on chain", False, failure)
    return Check("anchor on chain", True, f"the contract holds root "
                                          f"{bundle.anchored_root.hex()} at size "
                                          f"{bundle.anchored_size} for {sender}")


async def _on_chain_root(reader: ConsortiumReader, sender: str, bundle: Bundle) -> str | None:
    root = await reader.anchored_root(sender, bundle.anchored_size)
    if root != bundle.anchored_root:
        return (f"the contract holds {'no root' if root is None else root.hex()} at size "
                f"{bundle.anchored_size} for {sender}")
    return None


async def _on_chain_event(receipts: AnchorReceipts, bundle: Bundle) -> str | None:
    if await receipts.chain_id() != bundle.chain_id:
        return f"the node serves chain {await receipts.chain_id()}, not {bundle.chain_id}"
    event = await receipts.anchored_log(bundle.tx_hash)
    if event is None or event.to_json() != bundle.log:
        return "the chain's receipt does not hold the bundle's Anchored event"
    return None
