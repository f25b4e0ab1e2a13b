"""Anchoring on a real anvil node: checkpoints and codes reach the chain exactly once, and an
unreachable chain only postpones them."""

from __future__ import annotations

import hashlib

import pytest

from ledger.anchoring import run_anchoring
from ledger.chain import (
    ChainUnavailableError,
    SignedTransaction,
    Web3ChainGateway,
    queue_code_registration,
)
from ledger.log import append_record
from ledger.note import NoteSigner
from ledger.schema import LedgerChainTransaction, LedgerCodeRegistration
from ledger.sealing import seal
from market.database import current_engine

pytestmark = pytest.mark.chain

SIGNER = NoteSigner.generate("exchange.test/ledger")


async def append_and_seal(count: int, *, codes: tuple[str, ...] = ()) -> int:
    async with current_engine().transaction():
        for number in range(count):
            leaf = await append_record("test.event", actor="system", subject=f"s:{number}",
                                       payload={"n": number})
        for code in codes:
            await queue_code_registration(code, leaf.leaf_index, leaf.leaf_hash)
    result = await seal(SIGNER)
    assert result is not None
    return result.tree_size


def anchored_events(chain) -> list[tuple[int, bytes]]:
    logs = chain.contract.events.Anchored().get_logs(from_block=0)
    return [(log["args"]["treeSize"], log["args"]["root"]) for log in logs]


async def test_the_newest_checkpoint_and_queued_codes_reach_the_chain(db, chain, gateway):
    size = await append_and_seal(3, codes=("DEMOEX-A-2026-00000001-X", "DEMOEX-A-2026-00000002-Y"))

    run = await run_anchoring(gateway, confirmations=1)

    assert run.error is None
    assert run.anchored_tree_size == size
    assert run.codes_registered == 2
    latest_size, latest_root = chain.contract.functions.latestAnchor(chain.exchange).call()
    checkpoint_root = (await current_engine()._run_in_new_connection(
        "SELECT root_hash FROM ledger_checkpoints WHERE tree_size = $1", [size]))[0]["root_hash"]
    assert (latest_size, latest_root) == (size, checkpoint_root)
    exchange, leaf_index, _, registered = chain.contract.functions.lookupCode(
        "DEMOEX-A-2026-00000001-X").call()
    assert (exchange, leaf_index, registered) == (chain.exchange, 2, True)
    transactions = await LedgerChainTransaction.select().run()
    assert {row["status"] for row in transactions} == {"confirmed"}
    assert all(row["block_number"] and row["gas_used"] for row in transactions)
    # Nothing new: a second run sends nothing.
    again = await run_anchoring(gateway, confirmations=1)
    assert again.anchored_tree_size is None
    assert await LedgerChainTransaction.count() == 2


async def test_an_unreachable_chain_postpones_anchoring_and_loses_nothing(db, chain, gateway):
    await append_and_seal(2)
    assert (await run_anchoring(gateway)).anchored_tree_size == 2

    dead = Web3ChainGateway("http://127.0.0.1:9", chain.exchange_key, chain.contract.address,
                            attempts=2, backoff_s=0.01)
    try:
        size = await append_and_seal(5, codes=("DEMOEX-A-2026-00000003-Z",))
        postponed = await run_anchoring(dead)
    finally:
        await dead.close()
    assert postponed.error is not None
    assert postponed.anchored_tree_size is None
    # The exchange kept working: the leaves were appended and sealed meanwhile.
    assert size == 7

    caught_up = await run_anchoring(gateway)
    assert caught_up.anchored_tree_size == 7
    assert caught_up.codes_registered == 1
    assert [tree_size for tree_size, _ in anchored_events(chain)] == [2, 7]


class CrashAfterStoring:
    """Forwards to a real gateway but 'crashes' on broadcast: the transaction is stored and
    never sent, as when the process dies between the commit and the broadcast."""

    def __init__(self, real: Web3ChainGateway) -> None:
        self._real = real

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    @property
    def sender(self) -> str:
        return self._real.sender

    async def broadcast(self, _: SignedTransaction) -> None:
        raise ChainUnavailableError("simulated crash before the broadcast")


async def test_a_stored_transaction_is_rebroadcast_not_signed_again(db, chain, gateway):
    await append_and_seal(4, codes=("DEMOEX-A-2026-00000004-Q",))
    crashed = await run_anchoring(CrashAfterStoring(gateway))  # type: ignore[arg-type]
    assert crashed.error is not None
    stored = await LedgerChainTransaction.select().run()
    assert [row["status"] for row in stored] == ["signed"]

    # Sent once more, by hand as a node might have received it before the crash.
    await gateway.broadcast(SignedTransaction(gateway.sender, stored[0]["nonce"],
                                              stored[0]["tx_hash"], stored[0]["raw_transaction"]))
    resumed = await run_anchoring(gateway)

    assert resumed.error is None
    transactions = await LedgerChainTransaction.select().order_by(
        LedgerChainTransaction.id).run()
    assert transactions[0]["tx_hash"] == stored[0]["tx_hash"]
    assert [row["status"] for row in transactions] == ["confirmed", "confirmed"]
    assert len(anchored_events(chain)) == 1
    codes = chain.contract.events.CodeRegistered().get_logs(from_block=0)
    assert len(codes) == 1


async def test_a_code_registered_by_another_exchange_is_a_conflict(db, chain, gateway):
    code = "DEMOEX-A-2026-00000005-R"
    chain.w3.eth.wait_for_transaction_receipt(chain.contract.functions.registerCode(
        code, 9, hashlib.sha256(b"theirs").digest()).transact({"from": chain.peer}))
    await append_and_seal(1, codes=(code,))

    run = await run_anchoring(gateway)

    assert run.codes_in_conflict == [code]
    row = (await LedgerCodeRegistration.select().where(
        LedgerCodeRegistration.code == code).run())[0]
    assert (row["status"], row["conflict_exchange"]) == ("conflict", chain.peer)
    assert run.anchored_tree_size == 1
