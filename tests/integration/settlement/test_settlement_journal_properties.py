"""Property tests on the REAL database: random sequences of payments, settlements, refunds,
reversals, replays, conflicts and unbalanced writes, with every invariant checked after each
step against the in-memory model journal."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement import journal_store
from settlement.errors import IdempotencyConflictError
from settlement.fees import ServiceFeePolicy, Split, refund_portion, split
from settlement.journal import (
    Journal,
    JournalTransaction,
    TransactionKind,
    order_payment_received,
    order_settled,
    refund,
    reverse,
    settled_refund,
)
from settlement.money import Money

POLICIES = {
    "CNY": ServiceFeePolicy(rate_bps=250, cap=Money(5_000, "CNY"), minimum=Money(10, "CNY")),
    "USD": ServiceFeePolicy(rate_bps=290, cap=Money(1_000, "USD")),
}
OPERATIONS = ("pay", "settle", "refund", "settled_refund", "reverse", "replay", "conflict",
              "unbalanced")

steps = st.lists(
    st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 7), st.integers(1, 200_000),
              st.sampled_from(sorted(POLICIES))),
    min_size=1, max_size=12,
)


@dataclass
class Order:
    number: int
    buyer: str
    operator: str
    amount: Money
    settled: Split | None = None
    refunded: bool = False


@dataclass
class Model:
    journal: Journal = field(default_factory=Journal)
    orders: list[Order] = field(default_factory=list)
    keys: int = 0

    def next_key(self, prefix: str) -> str:
        self.keys += 1
        return f"{prefix}-{self.keys}"


async def _truncate(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "TRUNCATE journal_postings, journal_transactions, ledger_leaves, ledger_head "
            "RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


async def _unbalanced_write(url: str, key: str, currency: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            transaction_id = await connection.fetchval(
                "INSERT INTO journal_transactions (idempotency_key, kind, reference, fingerprint)"
                " VALUES ($1, 'payout', 'order:bad', repeat('0', 64)) RETURNING id", key)
            await connection.execute(
                "INSERT INTO journal_postings (transaction_id, account, direction, currency, "
                "amount_minor) VALUES ($1, 'clearing:bank', 'debit', $2, 101), "
                "($1, 'buyer:b', 'credit', $2, 100)", transaction_id, currency)
    finally:
        await connection.close()


async def _post(model: Model, transaction: JournalTransaction) -> None:
    model.journal.post(transaction)
    await journal_store.post(transaction, actor="property-test")


async def _check_invariants(model: Model) -> None:
    stored = await journal_store.all_transactions()
    # Append-only and faithful: every transaction the model holds is stored exactly as posted.
    assert [posted.transaction.fingerprint() for posted in stored] == [
        transaction.fingerprint() for transaction in model.journal]
    derived = await journal_store.balances()
    expected = model.journal.balances()
    assert {key: value for key, value in derived.items() if value} == {
        key: value for key, value in expected.items() if value}
    for currency in POLICIES:
        assert sum(value for (_, cur), value in derived.items() if cur == currency) == 0
    assert await journal_store.unbalanced_currencies() == {}


# One branch per operation, as a state machine reads best.
async def _step(model: Model, url: str,  # noqa: PLR0912
                step: tuple[str, int, int, str]) -> None:
    operation, pick, amount_minor, currency = step
    match operation:
        case "pay":
            number = len(model.orders)
            order = Order(number, f"buyer-{pick % 3}", f"operator-{pick % 2}",
                          Money(amount_minor, currency))
            model.orders.append(order)
            await _post(model, order_payment_received(
                idempotency_key=f"order-{number}-paid", reference=f"order:{number}",
                buyer_org_id=order.buyer, provider="stripe", amount=order.amount))
        case "settle":
            open_orders = [o for o in model.orders if o.settled is None and not o.refunded]
            if open_orders:
                order = open_orders[pick % len(open_orders)]
                order.settled = split(order.amount, POLICIES[order.amount.currency])
                await _post(model, order_settled(
                    idempotency_key=f"order-{order.number}-settled",
                    reference=f"order:{order.number}", buyer_org_id=order.buyer,
                    operator_org_id=order.operator, split=order.settled))
        case "refund":
            open_orders = [o for o in model.orders if o.settled is None and not o.refunded]
            if open_orders:
                order = open_orders[pick % len(open_orders)]
                order.refunded = True
                await _post(model, refund(
                    idempotency_key=f"order-{order.number}-refund",
                    reference=f"order:{order.number}", buyer_org_id=order.buyer,
                    provider="stripe", amount=order.amount))
        case "settled_refund":
            settled = [o for o in model.orders if o.settled and o.settled.gross.is_positive]
            if settled:
                order = settled[pick % len(settled)]
                assert order.settled is not None
                gross = order.settled.gross.amount_minor
                portion = refund_portion(
                    order.settled, Money(1 + amount_minor % gross, order.settled.gross.currency))
                order.settled = order.settled - portion
                await _post(model, settled_refund(
                    idempotency_key=model.next_key(f"order-{order.number}-settled-refund"),
                    reference=f"order:{order.number}", operator_org_id=order.operator,
                    provider="stripe", portion=portion))
        case "reverse":
            candidates = [t for t in model.journal
                          if t.kind is not TransactionKind.REVERSAL
                          and not model.journal.is_reversed(t.idempotency_key)]
            if candidates:
                original = candidates[pick % len(candidates)]
                await _post(model, reverse(original, model.next_key("reversal")))
        case "replay":
            transactions = list(model.journal)
            if transactions:
                again = await journal_store.post(transactions[pick % len(transactions)],
                                                 actor="property-test")
                assert not again.created
        case "conflict":
            transactions = [t for t in model.journal
                            if t.kind is TransactionKind.ORDER_PAYMENT_RECEIVED]
            if transactions:
                original = transactions[pick % len(transactions)]
                posting = original.postings[0]
                changed = order_payment_received(
                    idempotency_key=original.idempotency_key, reference=original.reference,
                    buyer_org_id="someone-else", provider="stripe", amount=posting.amount)
                with pytest.raises(IdempotencyConflictError):
                    await journal_store.post(changed, actor="property-test")
        case "unbalanced":
            with pytest.raises(asyncpg.CheckViolationError):
                await _unbalanced_write(url, model.next_key("unbalanced"), currency)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=steps)
async def test_every_invariant_holds_after_every_step(migrated_database: str,
                                                      sequence: list[tuple[str, int, int, str]],
                                                      ) -> None:
    await _truncate(migrated_database)
    model = Model()
    try:
        for step in sequence:
            await _step(model, migrated_database, step)
            await _check_invariants(model)
        if len(model.journal):
            connection = await asyncpg.connect(migrated_database)
            try:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await connection.execute("UPDATE journal_postings SET amount_minor = 1")
            finally:
                await connection.close()
    finally:
        await _truncate(migrated_database)
