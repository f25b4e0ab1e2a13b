"""Property tests on the REAL database: random sequences of payments, settlements, refunds,
reversals, replays, conflicts and unbalanced writes, with every invariant checked after each
step against the in-memory model journal.

Some orders are Stripe destination charges to a connected operator: the transfer of the
operator's share is booked with the payment, applied to the payable at settlement and reversed
by each refund. For every such order none of whose transactions was reversed, after every step:
its operator's payable is untouched (zero), the exchange's Stripe balance holds exactly the fee
still kept, and the connected account holds the operator's share while the order is unsettled."""

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
    Account,
    AccountKind,
    Journal,
    JournalTransaction,
    TransactionKind,
    connect_transfer,
    connect_transfer_reversal,
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
    # The Stripe connected account of a destination charge.
    connected_account: str | None = None

    @property
    def reference(self) -> str:
        return f"order:{self.number}"

    def fee_kept(self) -> int:
        """The fee the exchange keeps of it now: nothing once refunded in full."""
        if self.refunded:
            return 0
        share = self.settled or split(self.amount, POLICIES[self.amount.currency])
        return share.fee.amount_minor


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
    _check_destination_charges(model)


def _check_destination_charges(model: Model) -> None:
    touched = {t.reference for t in model.journal
               if t.reverses is not None or model.journal.is_reversed(t.idempotency_key)}
    for order in model.orders:
        if order.connected_account is None or order.reference in touched:
            continue
        moved: dict[AccountKind, int] = {}
        for transaction in model.journal:
            if transaction.reference == order.reference:
                for posting in transaction.postings:
                    kind = posting.account.kind
                    moved[kind] = moved.get(kind, 0) + posting.signed_amount_minor
        unsettled = order.settled is None and not order.refunded
        assert moved.get(AccountKind.OPERATOR_PAYABLE, 0) == 0
        assert moved.get(AccountKind.CLEARING, 0) == order.fee_kept()
        assert moved.get(AccountKind.CONNECT_TRANSFERRED, 0) == (
            split(order.amount, POLICIES[order.amount.currency]).operator_revenue.amount_minor
            if unsettled else 0)


async def _reverse_transfer(model: Model, order: Order, share: Money, *,
                            after_settlement: bool) -> None:
    """A refund of a destination charge reverses the transfer of the refunded operator share."""
    if order.connected_account is None or not share.is_positive:
        return
    out_of = Account.operator_payable(order.operator) if after_settlement \
        else Account.connect_transferred(order.connected_account)
    await _post(model, connect_transfer_reversal(
        idempotency_key=model.next_key(f"order-{order.number}-transfer-reversal"),
        reference=order.reference, provider="stripe", returned_from=out_of, amount=share))


# One branch per operation, as a state machine reads best.
async def _step(model: Model, url: str,  # noqa: PLR0912
                step: tuple[str, int, int, str]) -> None:
    operation, pick, amount_minor, currency = step
    match operation:
        case "pay":
            number = len(model.orders)
            connected = pick >= 4
            order = Order(number, f"buyer-{pick % 3}",
                          f"{'connected' if connected else 'operator'}-{pick % 2}",
                          Money(amount_minor, currency),
                          connected_account=f"acct_{pick % 2}" if connected else None)
            model.orders.append(order)
            await _post(model, order_payment_received(
                idempotency_key=f"order-{number}-paid", reference=order.reference,
                buyer_org_id=order.buyer, provider="stripe", amount=order.amount))
            share = split(order.amount, POLICIES[currency]).operator_revenue
            if order.connected_account is not None and share.is_positive:
                await _post(model, connect_transfer(
                    idempotency_key=f"order-{number}-transferred", reference=order.reference,
                    connected_account=order.connected_account, provider="stripe",
                    amount=share))
        case "settle":
            open_orders = [o for o in model.orders if o.settled is None and not o.refunded]
            if open_orders:
                order = open_orders[pick % len(open_orders)]
                order.settled = split(order.amount, POLICIES[order.amount.currency])
                await _post(model, order_settled(
                    idempotency_key=f"order-{order.number}-settled",
                    reference=order.reference, buyer_org_id=order.buyer,
                    operator_org_id=order.operator, split=order.settled,
                    connected_account=order.connected_account))
        case "refund":
            open_orders = [o for o in model.orders if o.settled is None and not o.refunded]
            if open_orders:
                order = open_orders[pick % len(open_orders)]
                order.refunded = True
                await _post(model, refund(
                    idempotency_key=f"order-{order.number}-refund",
                    reference=order.reference, buyer_org_id=order.buyer,
                    provider="stripe", amount=order.amount))
                share = split(order.amount, POLICIES[order.amount.currency]).operator_revenue
                await _reverse_transfer(model, order, share, after_settlement=False)
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
                    reference=order.reference, operator_org_id=order.operator,
                    provider="stripe", portion=portion))
                await _reverse_transfer(model, order, portion.operator_revenue,
                                        after_settlement=True)
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
