"""Proof bundles: everything a third party needs to check one leaf of this log offline.

A bundle is one JSON document (format `exchange-proof-bundle/v1`):

    leaf_index, entry            the leaf and its RFC 8785 entry (base64)
    inclusion_proof              RFC 9162 path from the leaf to the checkpoint's root (base64)
    checkpoint                   the signed checkpoint note, with the witnesses' cosignatures
    profile                      the exchange's signed profile (origin, keys, chain address)
    anchor                       the chain transaction that anchored a tree covering the leaf:
                                 chain id, contract, tree size, root, tx hash, block number, the
                                 raw signed transaction and its receipt's `Anchored` log
    anchor_consistency_proof     RFC 9162 proof from the anchored size to the checkpoint's size
                                 (empty when they are the same tree)

The builder reads the log alone (entries, checkpoints, the chain outbox) plus the receipt's log
from the chain; it knows nothing of what the entries mean, so any record kind can be bundled.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import TransactionNotFound

from ledger import serving
from ledger.cosignature_store import cosigned_checkpoint
from ledger.tables import LedgerLeaf

BUNDLE_FORMAT = "exchange-proof-bundle/v1"
ANCHORED_EVENT_TOPIC = keccak(text="Anchored(address,uint64,bytes32)")


@dataclass(frozen=True)
class AnchorLog:
    """The `Anchored` event of an anchor transaction's receipt, as the chain recorded it."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    transaction_hash: bytes
    log_index: int

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "topics": ["0x" + topic.hex() for topic in self.topics],
                "data": "0x" + self.data.hex(), "block_number": self.block_number,
                "transaction_hash": "0x" + self.transaction_hash.hex(),
                "log_index": self.log_index}


class AnchorReceipts(Protocol):
    """What a bundle needs from the chain: its id and an anchor transaction's event."""

    async def chain_id(self) -> int: ...

    async def anchored_log(self, tx_hash: bytes) -> AnchorLog | None: ...


class ClosableAnchorReceipts(AnchorReceipts, Protocol):
    async def close(self) -> None: ...


class Web3AnchorReceipts:
    """`AnchorReceipts` over JSON-RPC."""

    def __init__(self, rpc_url: str, *, request_timeout_s: float = 10.0) -> None:
        self._w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(
            rpc_url, request_kwargs={"timeout": request_timeout_s}))

    async def close(self) -> None:
        await self._w3.provider.disconnect()

    async def chain_id(self) -> int:
        return int(await self._w3.eth.chain_id)

    async def anchored_log(self, tx_hash: bytes) -> AnchorLog | None:
        try:
            receipt = await self._w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None
        if receipt["status"] != 1:
            return None
        for log in receipt["logs"]:
            topics = tuple(bytes(topic) for topic in log["topics"])
            if topics and topics[0] == ANCHORED_EVENT_TOPIC:
                return AnchorLog(str(log["address"]), topics, bytes(log["data"]),
                                 int(log["blockNumber"]), bytes(log["transactionHash"]),
                                 int(log["logIndex"]))
        return None


class KeptAnchorReceipts:
    """`AnchorReceipts` that keeps what it read: a confirmed anchor's event and the chain id
    never change, so a public bundle route asks the node once per anchor, not per request.
    The node is reached through `open_receipts` only on a miss, and closed after it."""

    def __init__(self, open_receipts: Callable[[], ClosableAnchorReceipts], *,
                 max_kept: int = 4096) -> None:
        self._open = open_receipts
        self._max_kept = max_kept
        self._chain_id: int | None = None
        self._logs: OrderedDict[bytes, AnchorLog] = OrderedDict()

    async def chain_id(self) -> int:
        if self._chain_id is None:
            receipts = self._open()
            try:
                self._chain_id = await receipts.chain_id()
            finally:
                await receipts.close()
        return self._chain_id

    async def anchored_log(self, tx_hash: bytes) -> AnchorLog | None:
        kept = self._logs.get(tx_hash)
        if kept is not None:
            self._logs.move_to_end(tx_hash)
            return kept
        receipts = self._open()
        try:
            found = await receipts.anchored_log(tx_hash)
        finally:
            await receipts.close()
        if found is not None:  # a missing event may yet appear: not kept
            self._logs[tx_hash] = found
            if len(self._logs) > self._max_kept:
                self._logs.popitem(last=False)
        return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _covering_anchor(leaf_index: int, checkpoint_size: int) -> Any:
    rows = await LedgerLeaf.raw(
        "SELECT a.tree_size, a.root_hash, t.tx_hash, t.raw_transaction, t.block_number "
        "FROM ledger_anchors a JOIN ledger_chain_transactions t ON t.id = a.transaction_id "
        "WHERE t.status = 'confirmed' AND a.tree_size > {} AND a.tree_size <= {} "
        "ORDER BY a.tree_size DESC LIMIT 1", leaf_index, checkpoint_size).run()
    return rows[0] if rows else None


async def build_bundle(leaf_index: int, *, profile_note: str, contract_address: str,
                       receipts: AnchorReceipts) -> dict[str, Any]:
    """The proof bundle of leaf `leaf_index`, in the newest checkpoint's tree and tied to the
    newest confirmed anchor that covers it. Raises `serving.LedgerLookupError` when the leaf is
    not sealed or no confirmed anchor covers it yet."""
    proved = await serving.entry_with_proof(leaf_index)
    size = proved.checkpoint.tree_size
    checkpoint = await cosigned_checkpoint(size)
    anchor = await _covering_anchor(leaf_index, size)
    if anchor is None:
        raise serving.LedgerLookupError(
            f"leaf {leaf_index} is not covered by a confirmed anchor yet; try after the next")
    anchored_size = int(anchor["tree_size"])
    event = await receipts.anchored_log(bytes(anchor["tx_hash"]))
    if event is None:
        raise serving.LedgerLookupError(
            f"the chain holds no Anchored event for the anchor of size {anchored_size}")
    consistency: list[bytes] = []
    if anchored_size < size:
        consistency = (await serving.consistency_proof(anchored_size, size)).proof
    return {
        "format": BUNDLE_FORMAT,
        "leaf_index": leaf_index,
        "entry": _b64(proved.entry),
        "inclusion_proof": [_b64(element) for element in proved.inclusion_proof],
        "checkpoint": checkpoint.note,
        "profile": profile_note,
        "anchor": {
            "chain_id": await receipts.chain_id(),
            "contract": contract_address,
            "tree_size": anchored_size,
            "root_hash": _b64(bytes(anchor["root_hash"])),
            "tx_hash": "0x" + bytes(anchor["tx_hash"]).hex(),
            "block_number": int(anchor["block_number"]),
            "raw_transaction": "0x" + bytes(anchor["raw_transaction"]).hex(),
            "log": event.to_json(),
        },
        "anchor_consistency_proof": [_b64(element) for element in consistency],
    }
