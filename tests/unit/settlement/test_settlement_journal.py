"""The double-entry journal: accounts, balanced transactions, trade-flow builders, idempotency."""

from dataclasses import replace
from typing import Any

import pytest

from settlement.errors import (
    IdempotencyConflictError,
    InvalidTransactionError,
    ReversalError,
    UnbalancedTransactionError,
)
from settlement.fees import ServiceFeePolicy, refund_portion, split
from settlement.journal import (
    EXCHANGE_FEES,
    EXCHANGE_REFUNDS,
    Account,
    AccountKind,
    Direction,
    Journal,
    JournalTransaction,
    Posting,
    TransactionKind,
    balances,
    check_idempotent_replay,
    check_reversal,
    connect_transfer,
    connect_transfer_reversal,
    order_payment_received,
    order_settled,
    payout,
    refund,
    reverse,
    settled_refund,
)
from settlement.money import INT64_MAX, Money

BUYER = Account.buyer("buyer-1")
OPERATOR = Account.operator_payable("operator-1")
BANK = Account.clearing("bank_transfer")
POLICY = ServiceFeePolicy(rate_bps=500, cap=Money(100_000, "CNY"))


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def paid(amount_minor: int = 10_000, key: str = "pay-1") -> JournalTransaction:
    return order_payment_received(
        idempotency_key=key,
        reference="order:1",
        buyer_org_id="buyer-1",
        provider="bank_transfer",
        amount=cny(amount_minor),
    )


def settled(amount_minor: int = 10_000, key: str = "settle-1") -> JournalTransaction:
    return order_settled(
        idempotency_key=key,
        reference="order:1",
        buyer_org_id="buyer-1",
        operator_org_id="operator-1",
        split=split(cny(amount_minor), POLICY),
    )


# --- accounts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "name", "normal_side"),
    [
        (BANK, "clearing:bank_transfer", Direction.DEBIT),
        (BUYER, "buyer:buyer-1", Direction.CREDIT),
        (OPERATOR, "operator:operator-1:payable", Direction.CREDIT),
        (EXCHANGE_FEES, "exchange:fees", Direction.CREDIT),
        (EXCHANGE_REFUNDS, "exchange:refunds", Direction.DEBIT),
        (Account.connect_transferred("acct_1Op"), "connect:acct_1Op", Direction.DEBIT),
    ],
)
def test_account_names_round_trip(account: Account, name: str, normal_side: Direction) -> None:
    assert account.name == name
    assert str(account) == name
    assert Account.parse(name) == account
    assert account.kind.normal_side is normal_side


@pytest.mark.parametrize(
    "name",
    [
        "buyer:",
        "buyer:a:b",
        "operator:x",
        "operator:x:receivable",
        "exchange:other",
        "clearing:a b",
        "connect:",
        "connect:acct:x",
    ],
)
def test_unknown_or_malformed_account_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidTransactionError) as raised:
        Account.parse(name)
    assert raised.value.field == "account"


def test_owner_rules() -> None:
    with pytest.raises(InvalidTransactionError):
        Account(AccountKind.BUYER)
    with pytest.raises(InvalidTransactionError):
        Account(AccountKind.EXCHANGE_FEES, "someone")
    with pytest.raises(InvalidTransactionError):
        Account.buyer("org:with:colons")


def test_natural_balance_is_positive_on_the_normal_side() -> None:
    assert BANK.natural_balance(500) == 500
    assert BUYER.natural_balance(-500) == 500
    assert EXCHANGE_REFUNDS.natural_balance(30) == 30


# --- transactions ------------------------------------------------------------------------------


def test_postings_carry_positive_amounts_only() -> None:
    for amount_minor in (0, -1):
        with pytest.raises(InvalidTransactionError) as raised:
            Posting(BANK, Direction.DEBIT, cny(amount_minor))
        assert raised.value.field == "postings"


def test_a_transaction_needs_two_postings() -> None:
    with pytest.raises(InvalidTransactionError) as raised:
        JournalTransaction(
            "k", TransactionKind.PAYOUT, (Posting(BANK, Direction.DEBIT, cny(1)),), "r"
        )
    assert raised.value.field == "postings"


def test_unbalanced_transactions_are_refused() -> None:
    with pytest.raises(UnbalancedTransactionError) as raised:
        JournalTransaction(
            "k",
            TransactionKind.PAYOUT,
            (
                Posting(OPERATOR, Direction.DEBIT, cny(100)),
                Posting(BANK, Direction.CREDIT, cny(99)),
            ),
            "payout:1",
        )
    assert raised.value.code == "unbalanced_transaction"
    assert raised.value.field == "postings"


def test_balance_is_checked_per_currency() -> None:
    # 100 CNY against 100 USD totals zero as numbers but balances in neither currency.
    with pytest.raises(UnbalancedTransactionError):
        JournalTransaction(
            "k",
            TransactionKind.PAYOUT,
            (
                Posting(OPERATOR, Direction.DEBIT, cny(100)),
                Posting(BANK, Direction.CREDIT, Money(100, "USD")),
            ),
            "payout:1",
        )
    two_currencies = JournalTransaction(
        "k",
        TransactionKind.PAYOUT,
        (
            Posting(OPERATOR, Direction.DEBIT, cny(100)),
            Posting(BANK, Direction.CREDIT, cny(100)),
            Posting(OPERATOR, Direction.DEBIT, Money(7, "USD")),
            Posting(BANK, Direction.CREDIT, Money(7, "USD")),
        ),
        "payout:1",
    )
    assert balances([two_currencies])[(BANK, "USD")] == -7


def test_sums_beyond_bigint_still_balance_exactly() -> None:
    transaction = JournalTransaction(
        "k",
        TransactionKind.ORDER_PAYMENT_RECEIVED,
        (
            Posting(BANK, Direction.DEBIT, cny(INT64_MAX)),
            Posting(BANK, Direction.DEBIT, cny(INT64_MAX)),
            Posting(BUYER, Direction.CREDIT, cny(INT64_MAX)),
            Posting(BUYER, Direction.CREDIT, cny(INT64_MAX)),
        ),
        "order:1",
    )
    assert balances([transaction])[(BANK, "CNY")] == 2 * INT64_MAX


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": " padded"}, "idempotency_key"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"reference": ""}, "reference"),
        ({"reverses": "pay-0"}, "reverses"),  # only a reversal may name one
        ({"kind": TransactionKind.REVERSAL}, "reverses"),  # a reversal must name one
        ({"kind": TransactionKind.REVERSAL, "reverses": "pay-1"}, "reverses"),  # itself
    ],
)
def test_malformed_transactions_are_refused(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidTransactionError) as raised:
        replace(paid(), **changes)
    assert raised.value.field == field


# --- the trade flow ----------------------------------------------------------------------------


def test_payment_then_settlement_then_payout() -> None:
    journal = Journal([paid(), settled()])
    assert journal.balance(BANK, "CNY") == 10_000
    assert journal.balance(BUYER, "CNY") == 0
    assert EXCHANGE_FEES.natural_balance(journal.balance(EXCHANGE_FEES, "CNY")) == 500
    assert OPERATOR.natural_balance(journal.balance(OPERATOR, "CNY")) == 9_500
    journal.post(
        payout(
            idempotency_key="payout-1",
            reference="payout:1",
            operator_org_id="operator-1",
            provider="bank_transfer",
            amount=cny(9_500),
        )
    )
    assert journal.balance(OPERATOR, "CNY") == 0
    assert journal.balance(BANK, "CNY") == 500  # the exchange's fee stays in the bank


def test_settlement_leaves_out_zero_shares() -> None:
    no_fee = order_settled(
        idempotency_key="s",
        reference="order:1",
        buyer_org_id="buyer-1",
        operator_org_id="operator-1",
        split=split(cny(100), ServiceFeePolicy(rate_bps=0, cap=cny(0))),
    )
    assert [p.account for p in no_fee.postings] == [BUYER, OPERATOR]
    all_fee = order_settled(
        idempotency_key="s",
        reference="order:1",
        buyer_org_id="buyer-1",
        operator_org_id="operator-1",
        split=split(cny(100), ServiceFeePolicy(rate_bps=100, cap=cny(500), minimum=cny(500))),
    )
    assert [p.account for p in all_fee.postings] == [BUYER, EXCHANGE_FEES]


def test_refund_before_settlement_returns_the_held_money() -> None:
    journal = Journal([paid()])
    journal.post(
        refund(
            idempotency_key="refund-1",
            reference="order:1",
            buyer_org_id="buyer-1",
            provider="bank_transfer",
            amount=cny(10_000),
        )
    )
    assert all(balance == 0 for balance in journal.balances().values())


def test_refund_after_settlement_takes_back_both_shares() -> None:
    journal = Journal([paid(), settled()])
    portion = refund_portion(split(cny(10_000), POLICY), cny(4_000))
    journal.post(
        settled_refund(
            idempotency_key="refund-1",
            reference="order:1",
            operator_org_id="operator-1",
            provider="bank_transfer",
            portion=portion,
        )
    )
    assert journal.balance(BANK, "CNY") == 6_000
    assert OPERATOR.natural_balance(journal.balance(OPERATOR, "CNY")) == 9_500 - 3_800
    assert EXCHANGE_REFUNDS.natural_balance(journal.balance(EXCHANGE_REFUNDS, "CNY")) == 200
    # Gross fee revenue stays visible; net is fees − refunds.
    assert EXCHANGE_FEES.natural_balance(journal.balance(EXCHANGE_FEES, "CNY")) == 500


def test_builders_refuse_zero_amounts() -> None:
    with pytest.raises(InvalidTransactionError):
        paid(amount_minor=0)


# --- reversal ----------------------------------------------------------------------------------


def test_reversal_swaps_sides_and_nets_to_zero() -> None:
    original = settled()
    reversal = reverse(original, "settle-1-reversal")
    assert reversal.kind is TransactionKind.REVERSAL
    assert reversal.reverses == "settle-1"
    assert reversal.reference == original.reference
    assert [p.direction for p in reversal.postings] == [
        p.direction.opposite for p in original.postings
    ]
    assert all(balance == 0 for balance in balances([original, reversal]).values())


def test_a_reversal_is_not_reversed() -> None:
    reversal = reverse(paid(), "pay-1-reversal")
    with pytest.raises(ReversalError):
        reverse(reversal, "again")


def test_journal_enforces_reversal_rules() -> None:
    journal = Journal([paid()])
    with pytest.raises(ReversalError):
        journal.post(reverse(paid(key="pay-unknown"), "r-0"))
    assert journal.post(reverse(paid(), "r-1"))
    assert journal.is_reversed("pay-1")
    with pytest.raises(ReversalError):
        journal.post(reverse(paid(), "r-2"))


def test_check_reversal_refuses_a_reversal_that_does_not_mirror() -> None:
    mismatched = replace(
        reverse(paid(), "r-1"),
        postings=(Posting(BUYER, Direction.DEBIT, cny(1)), Posting(BANK, Direction.CREDIT, cny(1))),
    )
    with pytest.raises(ReversalError) as raised:
        check_reversal(paid(), mismatched, already_reversed=False)
    assert raised.value.field == "postings"


# --- idempotency -------------------------------------------------------------------------------


def test_replaying_the_same_transaction_is_a_no_op() -> None:
    journal = Journal([paid()])
    assert journal.post(paid()) is False
    assert len(journal) == 1
    assert journal.balance(BANK, "CNY") == 10_000


def test_same_key_for_a_different_transaction_conflicts() -> None:
    journal = Journal([paid()])
    with pytest.raises(IdempotencyConflictError) as raised:
        journal.post(paid(amount_minor=9_999))
    assert raised.value.field == "idempotency_key"
    assert raised.value.code == "idempotency_conflict"


def test_fingerprint_ignores_posting_order_and_sees_every_field() -> None:
    original = settled()
    shuffled = replace(original, postings=tuple(reversed(original.postings)))
    assert shuffled.fingerprint() == original.fingerprint()
    check_idempotent_replay(original, shuffled)
    assert replace(original, reference="order:2").fingerprint() != original.fingerprint()
    assert settled(amount_minor=10_001).fingerprint() != original.fingerprint()
    assert len(original.fingerprint()) == 64


def test_canonical_encoding_keeps_amounts_beyond_double_precision_exact() -> None:
    # 2**53 + 1 is not representable as an IEEE double; the encoding must not round it.
    assert b'"amount_minor":"9007199254740993"' in paid(amount_minor=2**53 + 1).canonical_bytes()
    assert paid(amount_minor=2**53 + 1).fingerprint() != paid(amount_minor=2**53).fingerprint()


# --- Stripe destination charges ------------------------------------------------------------

STRIPE = Account.clearing("stripe")
TRANSFERRED = Account.connect_transferred("acct_1Op")


def destination_charge_paid() -> Journal:
    shares = split(cny(10_000), POLICY)
    return Journal([
        order_payment_received(idempotency_key="paid", reference="order:1",
                               buyer_org_id="buyer-1", provider="stripe", amount=cny(10_000)),
        connect_transfer(idempotency_key="transferred", reference="order:1",
                         connected_account="acct_1Op", provider="stripe",
                         amount=shares.operator_revenue)])


def transfer_reversal(key: str, returned_from: Account, amount: int) -> JournalTransaction:
    return connect_transfer_reversal(idempotency_key=key, reference="order:1",
                                     provider="stripe", returned_from=returned_from,
                                     amount=cny(amount))


def test_a_destination_charge_leaves_the_fee_at_stripe_and_settles_the_payable_to_zero() -> None:
    journal = destination_charge_paid()
    assert journal.balance(STRIPE, "CNY") == 500
    assert journal.balance(TRANSFERRED, "CNY") == 9_500
    journal.post(order_settled(idempotency_key="settled", reference="order:1",
                               buyer_org_id="buyer-1", operator_org_id="operator-1",
                               split=split(cny(10_000), POLICY), connected_account="acct_1Op"))
    assert (journal.balance(OPERATOR, "CNY"), journal.balance(TRANSFERRED, "CNY"),
            journal.balance(BUYER, "CNY")) == (0, 0, 0)
    assert EXCHANGE_FEES.natural_balance(journal.balance(EXCHANGE_FEES, "CNY")) == 500
    assert journal.balance(STRIPE, "CNY") == 500

    portion = refund_portion(split(cny(10_000), POLICY), cny(4_000))
    journal.post(settled_refund(idempotency_key="refund-1", reference="order:1",
                                operator_org_id="operator-1", provider="stripe",
                                portion=portion))
    journal.post(transfer_reversal("refund-1:reversal", OPERATOR, 3_800))
    assert journal.balance(OPERATOR, "CNY") == 0
    # Stripe gave back 4,000 and took 3,800 back from the operator: the fee share 200 left.
    assert journal.balance(STRIPE, "CNY") == 300


def test_a_refund_before_settlement_reverses_the_unsettled_transfer() -> None:
    journal = destination_charge_paid()
    journal.post(refund(idempotency_key="refund-1", reference="order:1", buyer_org_id="buyer-1",
                        provider="stripe", amount=cny(10_000)))
    journal.post(transfer_reversal("refund-1:reversal", TRANSFERRED, 9_500))
    assert {account: balance for account, balance in journal.balances().items() if balance} == {}


def test_a_transfer_is_reversed_only_out_of_a_connect_or_payable_account() -> None:
    with pytest.raises(InvalidTransactionError) as raised:
        transfer_reversal("r", BUYER, 100)
    assert raised.value.field == "account"
