"""Anchoring: send queued registration codes and the newest checkpoint to the chain.

The outbox discipline that keeps "nothing lost, nothing sent twice" (CONVENTIONS 7):
1. a transaction is signed, then stored (status `signed`) in the same database transaction
   that links the anchor or codes to it — and only then broadcast;
2. at most one transaction per sender is in flight (a partial unique index), so nonces are
   used in order and a stored transaction is never superseded by a new one;
3. every run first drives the in-flight transaction home: it re-broadcasts the stored bytes
   (a chain accepts the same nonce once), reads the receipt, checks its status and waits for
   the configured confirmations. Only then does it sign anything new.
When the chain is unreachable a run records the error and returns; the exchange keeps
appending and sealing, and the next run catches up with the newest checkpoint (one anchor
covers every checkpoint before it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from ledger.chain import (
    ChainGateway,
    ChainRejectedError,
    ChainUnavailableError,
    CodeRegistration,
    Receipt,
    SignedTransaction,
)
from ledger.tables import LedgerLeaf

logger = logging.getLogger("ledger.anchoring")

ANCHOR_LOCK_KEY = 0x6C65_6467_6572_0002
DEFAULT_CODES_PER_TRANSACTION = 50


@dataclass
class AnchorRun:
    """What one run did. `in_flight` is true when a transaction awaits mining/confirmations."""

    anchored_tree_size: int | None = None
    codes_registered: int = 0
    codes_in_conflict: list[str] = field(default_factory=list)
    in_flight: bool = False
    busy: bool = False
    error: str | None = None


@asynccontextmanager
async def _session_connection() -> AsyncIterator[Any]:
    """A connection of our own, outside any transaction: chain calls take seconds, and no
    database transaction may stay open across them. Never a pooled one: the run holds a
    session-level advisory lock, which must end with the connection whatever happens, not
    linger on a connection handed to the next request (the pool skips the reset query)."""
    engine: Any = LedgerLeaf._meta.db  # a PostgresEngine (the ledger runs on PostgreSQL only)
    connection = await engine.get_new_connection()
    try:
        yield connection
    finally:
        await connection.close()


async def run_anchoring(gateway: ChainGateway, *, confirmations: int = 1,
                        receipt_wait_s: float = 10.0, poll_interval_s: float = 0.2,
                        codes_per_transaction: int = DEFAULT_CODES_PER_TRANSACTION,
                        min_anchor_interval_s: float = 0.0) -> AnchorRun:
    """One pass over the outbox: finish the in-flight transaction, register queued codes,
    anchor the newest checkpoint. Safe to run concurrently (one runner wins the lock)."""
    run = AnchorRun()
    async with _session_connection() as connection:
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", ANCHOR_LOCK_KEY):
            run.busy = True
            return run
        try:
            driver = _Driver(connection, gateway, confirmations=confirmations,
                             receipt_wait_s=receipt_wait_s, poll_interval_s=poll_interval_s,
                             run=run, min_anchor_interval_s=min_anchor_interval_s)
            await driver.run(codes_per_transaction)
        except ChainUnavailableError as error:
            run.error = str(error)
            logger.warning("anchoring postponed: %s", error)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", ANCHOR_LOCK_KEY)
    return run


class _Driver:
    def __init__(self, connection: Any, gateway: ChainGateway, *, confirmations: int,
                 receipt_wait_s: float, poll_interval_s: float, run: AnchorRun,
                 min_anchor_interval_s: float) -> None:
        self._db = connection
        self._chain = gateway
        self._confirmations = confirmations
        self._receipt_wait_s = receipt_wait_s
        self._poll_interval_s = poll_interval_s
        self._run = run
        self._last_status: str | None = None
        self._min_anchor_interval_s = min_anchor_interval_s

    async def run(self, codes_per_transaction: int) -> None:
        in_flight = await self._db.fetchrow(
            "SELECT id, purpose, nonce, tx_hash, raw_transaction, status "
            "FROM ledger_chain_transactions WHERE sender = $1 AND status IN ('signed', 'mined') "
            "ORDER BY id LIMIT 1", self._chain.sender)
        if in_flight is not None and not await self._drive(in_flight):
            return
        while await self._register_codes(codes_per_transaction):
            pass
        if self._run.in_flight:
            return
        await self._anchor()

    # ------------------------------------------------------------------ new transactions

    async def _register_codes(self, limit: int) -> bool:
        """Send one batch of queued codes; True when another batch may follow at once."""
        rows = await self._db.fetch(
            "SELECT code, leaf_index, leaf_hash FROM ledger_code_registrations "
            "WHERE status = 'queued' ORDER BY queued_at, code LIMIT $1", limit)
        batch = []
        for row in rows:
            code = CodeRegistration(row["code"], int(row["leaf_index"]), bytes(row["leaf_hash"]))
            # A code already on chain is never sent again: ours (an earlier send whose record
            # was lost) is simply marked registered, another exchange's is a conflict for staff.
            on_chain = await self._chain.lookup_code(code.code)
            if on_chain is None:
                batch.append(code)
            elif on_chain.exchange.lower() == self._chain.sender.lower():
                await self._db.execute(
                    "UPDATE ledger_code_registrations SET status = 'registered' WHERE code = $1",
                    code.code)
                self._run.codes_registered += 1
            else:
                await self._db.execute(
                    "UPDATE ledger_code_registrations SET status = 'conflict', "
                    "conflict_exchange = $2 WHERE code = $1", code.code, on_chain.exchange)
                self._run.codes_in_conflict.append(code.code)
                logger.error("registration code %s is registered on chain by %s",
                             code.code, on_chain.exchange)
        if not batch:
            return bool(rows)
        nonce = await self._chain.next_nonce()
        signed = await self._chain.sign_register_codes(batch, nonce)
        async with self._db.transaction():
            transaction_id = await self._store(signed, "register_codes")
            await self._db.execute(
                "UPDATE ledger_code_registrations SET status = 'sending', transaction_id = $1 "
                "WHERE code = ANY($2::varchar[])", transaction_id, [item.code for item in batch])
        done = await self._drive_new(transaction_id, signed, "register_codes")
        return done and self._last_status == "confirmed" and len(rows) == limit

    async def _anchor(self) -> None:
        checkpoint = await self._db.fetchrow(
            "SELECT tree_size, root_hash FROM ledger_checkpoints "
            "ORDER BY tree_size DESC LIMIT 1")
        if checkpoint is None or checkpoint["tree_size"] == 0:
            return
        tree_size, root = int(checkpoint["tree_size"]), bytes(checkpoint["root_hash"])
        # Gas is paid per anchor, so anchors are spaced out; one anchor covers every checkpoint
        # before it, so spacing them delays nothing but the chain's view.
        if self._min_anchor_interval_s > 0 and await self._db.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ledger_anchors a JOIN ledger_chain_transactions t "
                "ON t.id = a.transaction_id WHERE t.status = 'confirmed' "
                "AND a.created_at > now() - make_interval(secs => $1))",
                self._min_anchor_interval_s):
            return
        chain_size, _ = await self._chain.latest_anchor()
        if chain_size >= tree_size:
            # Already covered on chain (the contract only takes growing sizes); reconciliation
            # checks that what is there matches our roots.
            return
        nonce = await self._chain.next_nonce()
        try:
            signed = await self._chain.sign_anchor(tree_size, root, nonce)
        except ChainRejectedError as error:
            self._run.error = str(error)
            logger.exception("anchoring tree size %d refused by the contract", tree_size)
            return
        async with self._db.transaction():
            transaction_id = await self._store(signed, "anchor")
            await self._db.execute(
                "INSERT INTO ledger_anchors (tree_size, root_hash, transaction_id) "
                "VALUES ($1, $2, $3)", tree_size, root, transaction_id)
        if await self._drive_new(transaction_id, signed, "anchor"):
            self._run.anchored_tree_size = tree_size

    async def _store(self, signed: SignedTransaction, purpose: str) -> int:
        return int(await self._db.fetchval(
            "INSERT INTO ledger_chain_transactions "
            "(purpose, sender, nonce, tx_hash, raw_transaction) VALUES ($1, $2, $3, $4, $5) "
            "RETURNING id", purpose, signed.sender, signed.nonce, signed.tx_hash, signed.raw))

    async def _drive_new(self, transaction_id: int, signed: SignedTransaction,
                         purpose: str) -> bool:
        return await self._drive({"id": transaction_id, "purpose": purpose,
                                  "nonce": signed.nonce, "tx_hash": signed.tx_hash,
                                  "raw_transaction": signed.raw, "status": "signed"})

    # ------------------------------------------------------------------ the in-flight one

    async def _drive(self, row: Any) -> bool:
        """Bring a stored transaction to a final state; True once it is final."""
        transaction_id = int(row["id"])
        signed = SignedTransaction(self._chain.sender, int(row["nonce"]), bytes(row["tx_hash"]),
                                   bytes(row["raw_transaction"]))
        receipt = await self._chain.receipt(signed.tx_hash)
        if receipt is None:
            outcome = await self._broadcast_again(transaction_id, row["purpose"], signed)
            if outcome is not None:
                return outcome
            receipt = await self._wait_for_receipt(signed.tx_hash)
        if receipt is None:
            self._run.in_flight = True
            return False
        if not receipt.succeeded:
            await self._finish(transaction_id, row["purpose"], "reverted", receipt)
            return True
        return await self._confirm(transaction_id, row["purpose"], receipt)

    async def _broadcast_again(self, transaction_id: int, purpose: str,
                               signed: SignedTransaction) -> bool | None:
        """Broadcast the stored bytes; None when sent, else `_drive`'s answer."""
        await self._db.execute(
            "UPDATE ledger_chain_transactions SET attempts = attempts + 1 WHERE id = $1",
            transaction_id)
        try:
            await self._chain.broadcast(signed)
        except ChainUnavailableError as error:
            await self._note_error(transaction_id, str(error))
            raise
        except Exception as error:
            # The node answered but refused the bytes; a nonce taken by another transaction
            # means ours can never be mined.
            if await self._chain.next_nonce() > signed.nonce and \
                    await self._chain.receipt(signed.tx_hash) is None:
                await self._finish(transaction_id, purpose, "dropped", None)
                return True
            await self._note_error(transaction_id, f"{type(error).__name__}: {error}")
            self._run.in_flight = True
            return False
        return None

    async def _confirm(self, transaction_id: int, purpose: str, receipt: Receipt) -> bool:
        deadline = asyncio.get_running_loop().time() + self._receipt_wait_s
        while await self._chain.block_number() - receipt.block_number + 1 < self._confirmations:
            if asyncio.get_running_loop().time() >= deadline:
                await self._db.execute(
                    "UPDATE ledger_chain_transactions SET status = 'mined', block_number = $2, "
                    "gas_used = $3 WHERE id = $1", transaction_id, receipt.block_number,
                    receipt.gas_used)
                self._run.in_flight = True
                return False
            await asyncio.sleep(self._poll_interval_s)
        # A reorganisation may have moved the transaction while we waited for confirmations.
        final = await self._chain.receipt(receipt.tx_hash)
        if final is None:
            self._run.in_flight = True
            return False
        await self._finish(transaction_id, purpose, "confirmed", final)
        return True

    async def _wait_for_receipt(self, tx_hash: bytes) -> Any:
        deadline = asyncio.get_running_loop().time() + self._receipt_wait_s
        while True:
            receipt = await self._chain.receipt(tx_hash)
            if receipt is not None or asyncio.get_running_loop().time() >= deadline:
                return receipt
            await asyncio.sleep(self._poll_interval_s)

    async def _note_error(self, transaction_id: int, message: str) -> None:
        await self._db.execute(
            "UPDATE ledger_chain_transactions SET last_error = $2 WHERE id = $1",
            transaction_id, message[:1000])

    async def _finish(self, transaction_id: int, purpose: str, status: str,
                      receipt: Any) -> None:
        self._last_status = status
        async with self._db.transaction():
            await self._db.execute(
                "UPDATE ledger_chain_transactions SET status = $2::varchar, block_number = $3, "
                "gas_used = $4, confirmed_at = CASE WHEN $2::varchar = 'confirmed' THEN now() "
                "END "
                "WHERE id = $1", transaction_id, status,
                None if receipt is None else receipt.block_number,
                None if receipt is None else receipt.gas_used)
            if purpose == "register_codes":
                # A failed batch goes back to the queue; the next run looks each code up on
                # chain first, so a code that did land is never sent again.
                new_status = "registered" if status == "confirmed" else "queued"
                result = await self._db.execute(
                    "UPDATE ledger_code_registrations SET status = $2::varchar, "
                    "transaction_id = CASE WHEN $2::varchar = 'registered' THEN transaction_id "
                    "END "
                    "WHERE transaction_id = $1", transaction_id, new_status)
                if status == "confirmed":
                    self._run.codes_registered += int(result.split()[-1])
            elif purpose == "anchor" and status == "confirmed":
                size = await self._db.fetchval(
                    "SELECT tree_size FROM ledger_anchors WHERE transaction_id = $1",
                    transaction_id)
                self._run.anchored_tree_size = None if size is None else int(size)
        if status != "confirmed":
            logger.error("chain transaction %d (%s) %s", transaction_id, purpose, status)


async def anchored_state() -> dict[str, Any]:
    """The newest confirmed anchor and the outbox backlog, for readiness and the CLI."""
    engine = LedgerLeaf._meta.db
    async with engine.transaction() as transaction:
        connection = transaction.connection
        latest = await connection.fetchrow(
            "SELECT a.tree_size, t.block_number, t.tx_hash FROM ledger_anchors a "
            "JOIN ledger_chain_transactions t ON t.id = a.transaction_id "
            "WHERE t.status = 'confirmed' ORDER BY a.tree_size DESC LIMIT 1")
        queued = await connection.fetchval(
            "SELECT count(*) FROM ledger_code_registrations WHERE status IN ('queued', 'sending')")
    return {
        "anchored_tree_size": None if latest is None else int(latest["tree_size"]),
        "block_number": None if latest is None else int(latest["block_number"]),
        "tx_hash": None if latest is None else bytes(latest["tx_hash"]).hex(),
        "codes_pending": int(queued),
    }
