"""The stored journal: the database refuses unbalanced transactions at commit, keeps history
append-only, replays idempotent posts, and derives balances by SQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ledger.entries import LedgerRecord
from ledger.tables import LedgerLeaf
from settlement import journal_store
from settlement.errors import IdempotencyConflictError, ReversalError
from settlement.fees import ServiceFeePolicy, split
from settlement.journal import (
    EXCHANGE_FEES,
    Account,
    order_payment_received,
    order_settled,
    reverse,
)
from settlement.money import Money
from settlement.tables import transaction_connection

BUYER = Account.buyer("buyer-1")
OPERATOR = Account.operator_payable("operator-1")
BANK = Account.clearing("bank_transfer")
POLICY = ServiceFeePolicy(rate_bps=500, cap=Money(100_000, "CNY"))


def payment(key: str = "pay-1", amount_minor: int = 10_000):
    return order_payment_received(idempotency_key=key, reference="order:1",
                                  buyer_org_id="buyer-1", provider="bank_transfer",
                                  amount=Money(amount_minor, "CNY"))


async def test_post_stores_postings_ledgers_them_and_derives_balances(db: str) -> None:
    posted = await journal_store.post(payment(), actor="staff:1")
    assert posted.created
    settled = order_settled(idempotency_key="settle-1", reference="order:1",
                            buyer_org_id="buyer-1", operator_org_id="operator-1",
                            split=split(Money(10_000, "CNY"), POLICY))
    await journal_store.post(settled, actor="buyer:1")

    assert await journal_store.balance(BANK, "CNY") == 10_000
    assert await journal_store.balance(BUYER, "CNY") == 0
    assert await journal_store.balance(EXCHANGE_FEES, "CNY") == -500
    assert await journal_store.balance(OPERATOR, "CNY") == -9_500
    assert await journal_store.balance(OPERATOR, "USD") == 0
    everything = await journal_store.balances()
    assert sum(everything.values()) == 0
    assert everything[(OPERATOR, "CNY")] == -9_500
    assert await journal_store.unbalanced_currencies() == {}

    stored = await journal_store.get("pay-1")
    assert stored is not None
    assert stored.transaction.fingerprint() == payment().fingerprint()
    leaves = await LedgerLeaf.select().order_by(LedgerLeaf.leaf_index).run()
    assert [leaf["subject"] for leaf in leaves] == ["journal:pay-1", "journal:settle-1"]
    record = LedgerRecord.from_canonical_json(leaves[0]["entry"])
    assert record.payload["fingerprint"] == payment().fingerprint()


async def test_same_key_same_transaction_returns_the_stored_one(db: str) -> None:
    first = await journal_store.post(payment(), actor="a")
    again = await journal_store.post(payment(), actor="a")
    assert (again.created, again.id) == (False, first.id)
    assert await journal_store.balance(BANK, "CNY") == 10_000
    assert await LedgerLeaf.count() == 1


async def test_same_key_different_transaction_is_a_conflict_and_writes_nothing(db: str) -> None:
    await journal_store.post(payment(), actor="a")
    with pytest.raises(IdempotencyConflictError) as caught:
        await journal_store.post(payment(amount_minor=10_001), actor="a")
    assert caught.value.field == "idempotency_key"
    assert await journal_store.balance(BANK, "CNY") == 10_000


async def test_concurrent_posts_of_one_key_store_it_once(db: str) -> None:
    results = await asyncio.gather(*(journal_store.post(payment(), actor="a") for _ in range(8)))
    assert sum(result.created for result in results) == 1
    assert len({result.id for result in results}) == 1
    assert await journal_store.balance(BANK, "CNY") == 10_000


async def test_reversal_references_the_original_and_only_once(db: str) -> None:
    original = await journal_store.post(payment(), actor="a")
    reversal = reverse(original.transaction, "pay-1-reversal")
    await journal_store.post(reversal, actor="staff:1")
    assert await journal_store.is_reversed("pay-1")
    assert await journal_store.balance(BANK, "CNY") == 0
    stored = await journal_store.get("pay-1-reversal")
    assert stored is not None
    assert stored.transaction.reverses == "pay-1"
    # Replaying the same reversal is idempotent; a second, different reversal is refused.
    assert not (await journal_store.post(reversal, actor="staff:1")).created
    with pytest.raises(ReversalError, match="already reversed"):
        await journal_store.post(reverse(original.transaction, "pay-1-again"), actor="s")
    with pytest.raises(ReversalError, match="does not exist"):
        await journal_store.post(reverse(payment("never-posted"), "r"), actor="s")


async def test_the_database_refuses_an_unbalanced_transaction_at_commit(db: str) -> None:
    async def write_unbalanced() -> None:
        async with transaction_connection() as connection:
            transaction_id = await connection.fetchval(
                "INSERT INTO journal_transactions (idempotency_key, kind, reference, fingerprint)"
                " VALUES ('raw', 'payout', 'order:raw', repeat('0', 64)) RETURNING id")
            await connection.execute(
                "INSERT INTO journal_postings (transaction_id, account, direction, currency, "
                "amount_minor) VALUES ($1, 'clearing:bank', 'debit', 'CNY', 100), "
                "($1, 'buyer:b', 'credit', 'CNY', 99)", transaction_id)
            # Still inside the transaction: the check is deferred to commit.

    with pytest.raises(asyncpg.CheckViolationError, match="unbalanced in CNY"):
        await write_unbalanced()
    assert await journal_store.all_transactions() == []


async def _write_cross_currency(connection: asyncpg.Connection) -> None:
    async with connection.transaction():
        transaction_id = await connection.fetchval(
            "INSERT INTO journal_transactions (idempotency_key, kind, reference, "
            "fingerprint) VALUES ('fx', 'payout', 'x', repeat('0', 64)) RETURNING id")
        await connection.execute(
            "INSERT INTO journal_postings (transaction_id, account, direction, currency,"
            " amount_minor) VALUES ($1, 'a:x', 'debit', 'CNY', 100), "
            "($1, 'b:y', 'credit', 'USD', 100)", transaction_id)


async def test_the_database_refuses_a_single_posting_and_balance_per_currency(db: str) -> None:
    connection = await asyncpg.connect(db)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="at least two"):
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO journal_transactions (idempotency_key, kind, reference, "
                    "fingerprint) VALUES ('one', 'payout', 'x', repeat('0', 64))")
        # Balanced in total but not per currency.
        with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):
            await _write_cross_currency(connection)
        # A posting added later to a committed, balanced transaction is checked too.
        posted = await journal_store.post(payment(), actor="a")
        with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):
            await connection.execute(
                "INSERT INTO journal_postings (transaction_id, account, direction, currency, "
                "amount_minor) VALUES ($1, 'buyer:x', 'credit', 'CNY', 1)", posted.id)
    finally:
        await connection.close()
    assert await journal_store.balance(BANK, "CNY") == 10_000


@pytest.mark.parametrize("statement", [
    "UPDATE journal_postings SET amount_minor = amount_minor + 1",
    "DELETE FROM journal_postings",
    "UPDATE journal_transactions SET reference = 'forged'",
    "DELETE FROM journal_transactions",
])
async def test_journal_is_append_only_in_the_database(db: str, statement: str) -> None:
    await journal_store.post(payment(), actor="a")
    connection = await asyncpg.connect(db)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(statement)
    finally:
        await connection.close()
