"""The double-entry journal (CONVENTIONS 8: TigerBeetle's data modeling, Formance's postings).

Every movement of money is a ``JournalTransaction`` of two or more ``Posting``s whose debits equal
its credits in every currency. Transactions are append-only: a mistake is corrected by a
reversing transaction, never by an edit. Every transaction carries an idempotency key; the same
key with a different transaction is an ``IdempotencyConflictError``. Balances are never stored
as truth: ``balances`` derives them from the entries.

Accounts (``kind:owner`` names, so a balance query is a prefix scan):

==========================  ==============  ======  =============================================
name                        kind            normal  meaning
==========================  ==============  ======  =============================================
``clearing:<provider>``     asset           debit   money held at, or due from, a payment
                                                    provider (the bank account for bank transfer,
                                                    the Stripe balance for Stripe)
``buyer:<org>``             liability       credit  a buyer's money the exchange holds until the
                                                    order settles or is refunded; a debit balance
                                                    would be a receivable from the buyer
``operator:<org>:payable``  liability       credit  revenue earned by an operator, not yet paid
                                                    out; a debit balance is money the operator
                                                    owes back after a refund of a settled order
``exchange:fees``           revenue         credit  the exchange's service fees, gross
``exchange:refunds``        contra-revenue  debit   service fees given back on refunds of settled
                                                    orders; net fee income is fees − refunds
``exchange:payouts``        liability       credit  payouts instructed to operators' bank
                                                    accounts that the bank has not sent yet
``connect:<account>``       asset           debit   operator shares of Stripe destination charges
                                                    transferred to connected account <account>
                                                    when the charge succeeded, for orders not yet
                                                    settled: buyers' money the operator holds
                                                    ahead of acceptance, which a refund takes
                                                    back by reversing the transfer
==========================  ==============  ======  =============================================

Balances are signed debit-minus-credit, so that the sum of all balances in each currency is zero;
``Account.natural_balance`` turns one into the positive-when-normal figure people read.

Trade flow (ARCHITECTURE "How a trade flows"):

- payment confirmed:  Dr clearing:<provider> / Cr buyer:<org>
- settled on acceptance:  Dr buyer:<org> / Cr exchange:fees, Cr operator:<org>:payable
- refund before settlement:  Dr buyer:<org> / Cr clearing:<provider>
- refund after settlement:  Dr operator:<org>:payable, Dr exchange:refunds / Cr clearing:<provider>
- payout to an operator:  Dr operator:<org>:payable / Cr clearing:<provider>
- bank payout, instructed:  Dr operator:<org>:payable / Cr exchange:payouts; sent by the bank:
  Dr exchange:payouts / Cr clearing:bank_transfer
- reversal: the original's postings with debit and credit swapped.

Stripe destination charges (an operator with a connected account, ISSUE 5 §7): Stripe transfers
price − application fee to the operator the moment the charge succeeds, so the exchange's Stripe
balance keeps only the fee. The journal follows the money at every moment:

- payment confirmed, as above, and at once the transfer:  Dr connect:<account> / Cr
  clearing:stripe, for the operator's share;
- settled on acceptance, as above (so fee revenue and the operator's earned share are recognised
  then), and the share earned is the share already transferred:  Dr operator:<org>:payable /
  Cr connect:<account>; a connected operator's payable therefore ends at zero, and bank payouts
  are never due to it;
- refund (reverse_transfer, refund_application_fee), as above, and the reversal of the refunded
  operator share:  Dr clearing:stripe / Cr connect:<account> before settlement, Cr
  operator:<org>:payable after it (the settled refund debited the payable; the reversal is the
  operator giving that share back).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from ledger.canonical import canonical_json
from settlement.errors import (
    IdempotencyConflictError,
    InvalidTransactionError,
    ReversalError,
    UnbalancedTransactionError,
)
from settlement.fees import Split
from settlement.money import Money


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"

    @property
    def opposite(self) -> Direction:
        return Direction.CREDIT if self is Direction.DEBIT else Direction.DEBIT


class AccountKind(StrEnum):
    CLEARING = "clearing"
    BUYER = "buyer"
    OPERATOR_PAYABLE = "operator_payable"
    EXCHANGE_FEES = "exchange_fees"
    EXCHANGE_REFUNDS = "exchange_refunds"
    PAYOUTS_IN_TRANSIT = "payouts_in_transit"
    CONNECT_TRANSFERRED = "connect_transferred"

    @property
    def normal_side(self) -> Direction:
        """Where this kind's balance normally sits (assets and contra-revenue: debit)."""
        if self in (AccountKind.CLEARING, AccountKind.EXCHANGE_REFUNDS,
                    AccountKind.CONNECT_TRANSFERRED):
            return Direction.DEBIT
        return Direction.CREDIT

    @property
    def has_owner(self) -> bool:
        return self not in (AccountKind.EXCHANGE_FEES, AccountKind.EXCHANGE_REFUNDS,
                            AccountKind.PAYOUTS_IN_TRANSIT)


# An owner is one name segment: it may not contain ':' (the separator) or whitespace.
_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_OWNED_NAME = re.compile(
    r"(?:(?P<clearing>clearing):(?P<provider>[^:]+)"
    r"|(?P<buyer>buyer):(?P<buyer_org>[^:]+)"
    r"|(?P<connect>connect):(?P<connected_account>[^:]+)"
    r"|operator:(?P<operator_org>[^:]+):payable)"
)
_EXCHANGE_NAMES = {
    "exchange:fees": AccountKind.EXCHANGE_FEES,
    "exchange:refunds": AccountKind.EXCHANGE_REFUNDS,
    "exchange:payouts": AccountKind.PAYOUTS_IN_TRANSIT,
}
_EXCHANGE_ACCOUNT_NAMES = {kind: name for name, kind in _EXCHANGE_NAMES.items()}
_OWNED_NAME_FORMATS = {
    AccountKind.CLEARING: "clearing:{}",
    AccountKind.BUYER: "buyer:{}",
    AccountKind.OPERATOR_PAYABLE: "operator:{}:payable",
    AccountKind.CONNECT_TRANSFERRED: "connect:{}",
}


@dataclass(frozen=True, slots=True)
class Account:
    """A journal account: a kind and, for per-party kinds, the provider or organisation id."""

    kind: AccountKind
    owner: str | None = None

    def __post_init__(self) -> None:
        if not self.kind.has_owner:
            if self.owner is not None:
                raise InvalidTransactionError(f"{self.kind} has no owner", field="account")
            return
        if self.owner is None or not _OWNER.fullmatch(self.owner):
            raise InvalidTransactionError(
                f"{self.kind} account needs an owner id of letters, digits, '_', '.', '-' "
                f"(at most 128), got {self.owner!r}",
                field="account",
            )

    @classmethod
    def clearing(cls, provider: str) -> Account:
        return cls(AccountKind.CLEARING, provider)

    @classmethod
    def buyer(cls, org_id: str) -> Account:
        return cls(AccountKind.BUYER, org_id)

    @classmethod
    def operator_payable(cls, org_id: str) -> Account:
        return cls(AccountKind.OPERATOR_PAYABLE, org_id)

    @classmethod
    def connect_transferred(cls, connected_account: str) -> Account:
        return cls(AccountKind.CONNECT_TRANSFERRED, connected_account)

    @classmethod
    def parse(cls, name: str) -> Account:
        if name in _EXCHANGE_NAMES:
            return cls(_EXCHANGE_NAMES[name])
        match = _OWNED_NAME.fullmatch(name)
        if match is None:
            raise InvalidTransactionError(f"unknown account name {name!r}", field="account")
        if match["clearing"]:
            return cls.clearing(match["provider"])
        if match["buyer"]:
            return cls.buyer(match["buyer_org"])
        if match["connect"]:
            return cls.connect_transferred(match["connected_account"])
        return cls.operator_payable(match["operator_org"])

    @property
    def name(self) -> str:
        if self.owner is None:
            return _EXCHANGE_ACCOUNT_NAMES[self.kind]
        return _OWNED_NAME_FORMATS[self.kind].format(self.owner)

    def natural_balance(self, debit_minus_credit: int) -> int:
        """The balance as people read it: positive when it sits on the account's normal side."""
        return (
            debit_minus_credit if self.kind.normal_side is Direction.DEBIT else -debit_minus_credit
        )

    def __str__(self) -> str:
        return self.name


EXCHANGE_FEES = Account(AccountKind.EXCHANGE_FEES)
EXCHANGE_REFUNDS = Account(AccountKind.EXCHANGE_REFUNDS)
PAYOUTS_IN_TRANSIT = Account(AccountKind.PAYOUTS_IN_TRANSIT)


@dataclass(frozen=True, slots=True)
class Posting:
    """One entry: ``amount`` (always positive) to the debit or credit side of ``account``."""

    account: Account
    direction: Direction
    amount: Money

    def __post_init__(self) -> None:
        if not self.amount.is_positive:
            # TigerBeetle and Formance alike: the side carries the sign, the amount never does.
            raise InvalidTransactionError(
                f"posting to {self.account} must have a positive amount, "
                f"got {self.amount.amount_minor}",
                field="postings",
            )

    @property
    def signed_amount_minor(self) -> int:
        """Debit-positive amount, the convention of ``balances``."""
        return (
            self.amount.amount_minor
            if self.direction is Direction.DEBIT
            else -self.amount.amount_minor
        )

    def reversed(self) -> Posting:
        return Posting(self.account, self.direction.opposite, self.amount)


class TransactionKind(StrEnum):
    ORDER_PAYMENT_RECEIVED = "order_payment_received"
    ORDER_SETTLED = "order_settled"
    REFUND = "refund"
    SETTLED_REFUND = "settled_refund"
    PAYOUT = "payout"
    CONNECT_TRANSFER = "connect_transfer"
    CONNECT_TRANSFER_REVERSAL = "connect_transfer_reversal"
    REVERSAL = "reversal"


_MAX_KEY_LENGTH = 255
_FINGERPRINT_FORMAT = "settlement.journal-transaction/1"


def _check_identifier(value: str, *, field: str) -> None:
    if not value or len(value) > _MAX_KEY_LENGTH or value != value.strip():
        raise InvalidTransactionError(
            f"{field} must be 1 to {_MAX_KEY_LENGTH} characters without surrounding spaces",
            field=field,
        )


@dataclass(frozen=True, slots=True)
class JournalTransaction:
    """A balanced set of postings, written once under ``idempotency_key``.

    ``reference`` ties it to the business record (e.g. ``order:<id>``); ``reverses`` is the key of
    the transaction it undoes, for reversals only.
    """

    idempotency_key: str
    kind: TransactionKind
    postings: tuple[Posting, ...]
    reference: str
    reverses: str | None = None

    def __post_init__(self) -> None:
        _check_identifier(self.idempotency_key, field="idempotency_key")
        _check_identifier(self.reference, field="reference")
        if (self.kind is TransactionKind.REVERSAL) != (self.reverses is not None):
            raise InvalidTransactionError(
                "a reversal names the transaction it reverses, and only a reversal does",
                field="reverses",
            )
        if self.reverses is not None:
            _check_identifier(self.reverses, field="reverses")
            if self.reverses == self.idempotency_key:
                raise InvalidTransactionError(
                    "a transaction cannot reverse itself", field="reverses"
                )
        if len(self.postings) < 2:
            raise InvalidTransactionError(
                "a transaction needs at least two postings", field="postings"
            )
        net_by_currency: defaultdict[str, int] = defaultdict(int)
        for posting in self.postings:
            net_by_currency[posting.amount.currency] += posting.signed_amount_minor
        unbalanced = {currency: net for currency, net in net_by_currency.items() if net}
        if unbalanced:
            detail = ", ".join(
                f"{currency} debits exceed credits by {net}" for currency, net in unbalanced.items()
            )
            raise UnbalancedTransactionError(f"unbalanced transaction: {detail}", field="postings")

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the transaction, postings sorted so their order is moot.

        Amounts are decimal strings: RFC 8785 numbers are IEEE doubles, exact only to 2**53.
        """
        postings = sorted(
            (p.account.name, p.direction.value, p.amount.currency, p.amount.amount_minor)
            for p in self.postings
        )
        return canonical_json(
            {
                "format": _FINGERPRINT_FORMAT,
                "idempotency_key": self.idempotency_key,
                "kind": self.kind.value,
                "reference": self.reference,
                "reverses": self.reverses,
                "postings": [
                    {
                        "account": account,
                        "direction": direction,
                        "currency": currency,
                        "amount_minor": str(amount_minor),
                    }
                    for account, direction, currency, amount_minor in postings
                ],
            }
        )

    def fingerprint(self) -> str:
        """SHA-256 (hex) of ``canonical_bytes``: equal exactly when the transactions are equal."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


def _transaction(
    idempotency_key: str, kind: TransactionKind, reference: str, *postings: Posting
) -> JournalTransaction:
    return JournalTransaction(idempotency_key, kind, tuple(postings), reference)


def _movement(
    idempotency_key: str, kind: TransactionKind, reference: str, *, debit: Account,
    credit: Account, amount: Money
) -> JournalTransaction:
    """One amount moved from one account to another: most of the exchange's postings."""
    return _transaction(
        idempotency_key,
        kind,
        reference,
        Posting(debit, Direction.DEBIT, amount),
        Posting(credit, Direction.CREDIT, amount),
    )


def order_payment_received(
    *, idempotency_key: str, reference: str, buyer_org_id: str, provider: str, amount: Money
) -> JournalTransaction:
    """The provider confirmed the buyer's payment: the money is held for the buyer."""
    return _movement(
        idempotency_key,
        TransactionKind.ORDER_PAYMENT_RECEIVED,
        reference,
        debit=Account.clearing(provider),
        credit=Account.buyer(buyer_org_id),
        amount=amount,
    )


def order_settled(
    *,
    idempotency_key: str,
    reference: str,
    buyer_org_id: str,
    operator_org_id: str,
    split: Split,
    connected_account: str | None = None,
) -> JournalTransaction:
    """The buyer accepted delivery: the held price becomes fee revenue and operator payable.

    For a destination charge to ``connected_account`` the operator's share was transferred when
    the charge succeeded (``connect_transfer``): the share it now earns is that transfer, so the
    payable it is credited is settled by it in the same transaction.

    A zero share (no fee, or a fee equal to the price) gets no posting, since amounts are
    positive.
    """
    payable = Account.operator_payable(operator_org_id)
    credit_postings = [
        Posting(account, Direction.CREDIT, share)
        for account, share in ((EXCHANGE_FEES, split.fee), (payable, split.operator_revenue))
        if share.is_positive
    ]
    transferred_postings = [
        Posting(payable, Direction.DEBIT, split.operator_revenue),
        Posting(Account.connect_transferred(connected_account), Direction.CREDIT,
                split.operator_revenue),
    ] if connected_account is not None and split.operator_revenue.is_positive else []
    return _transaction(
        idempotency_key,
        TransactionKind.ORDER_SETTLED,
        reference,
        Posting(Account.buyer(buyer_org_id), Direction.DEBIT, split.gross),
        *credit_postings,
        *transferred_postings,
    )


def refund(
    *, idempotency_key: str, reference: str, buyer_org_id: str, provider: str, amount: Money
) -> JournalTransaction:
    """A refund of a paid, not yet settled order, out of the money held for the buyer."""
    return _movement(
        idempotency_key,
        TransactionKind.REFUND,
        reference,
        debit=Account.buyer(buyer_org_id),
        credit=Account.clearing(provider),
        amount=amount,
    )


def settled_refund(
    *, idempotency_key: str, reference: str, operator_org_id: str, provider: str, portion: Split
) -> JournalTransaction:
    """A refund of a settled order: the operator gives back its share (its payable may go into
    debit if already paid out) and the exchange its fee share, booked to exchange:refunds so
    that gross fee revenue stays visible. ``portion`` comes from ``fees.refund_portion``."""
    debit_postings = [
        Posting(account, Direction.DEBIT, share)
        for account, share in (
            (Account.operator_payable(operator_org_id), portion.operator_revenue),
            (EXCHANGE_REFUNDS, portion.fee),
        )
        if share.is_positive
    ]
    return _transaction(
        idempotency_key,
        TransactionKind.SETTLED_REFUND,
        reference,
        *debit_postings,
        Posting(Account.clearing(provider), Direction.CREDIT, portion.gross),
    )


def payout(
    *, idempotency_key: str, reference: str, operator_org_id: str, provider: str, amount: Money
) -> JournalTransaction:
    """The provider paid the operator out of its payable balance."""
    return _movement(
        idempotency_key,
        TransactionKind.PAYOUT,
        reference,
        debit=Account.operator_payable(operator_org_id),
        credit=Account.clearing(provider),
        amount=amount,
    )


def connect_transfer(
    *, idempotency_key: str, reference: str, connected_account: str, provider: str,
    amount: Money
) -> JournalTransaction:
    """A destination charge succeeded and Stripe transferred the operator's share (price −
    application fee) to its connected account: the money leaves the exchange's balance."""
    return _movement(
        idempotency_key,
        TransactionKind.CONNECT_TRANSFER,
        reference,
        debit=Account.connect_transferred(connected_account),
        credit=Account.clearing(provider),
        amount=amount,
    )


def connect_transfer_reversal(
    *, idempotency_key: str, reference: str, provider: str, returned_from: Account,
    amount: Money
) -> JournalTransaction:
    """A refund of a destination charge reversed the transfer of the refunded operator share:
    the money comes back to the exchange's balance ``returned_from`` the transfer not yet
    settled (``connect:<account>``) or, after settlement, the operator's payable, which the
    settled refund debited."""
    if returned_from.kind not in (AccountKind.CONNECT_TRANSFERRED, AccountKind.OPERATOR_PAYABLE):
        raise InvalidTransactionError(
            f"a transfer is reversed out of a connect or operator payable account, "
            f"not {returned_from}", field="account")
    return _movement(
        idempotency_key,
        TransactionKind.CONNECT_TRANSFER_REVERSAL,
        reference,
        debit=Account.clearing(provider),
        credit=returned_from,
        amount=amount,
    )


def payout_instructed(
    *, idempotency_key: str, reference: str, operator_org_id: str, amount: Money
) -> JournalTransaction:
    """A bank payout to the operator, instructed: its payable moves to payouts in transit."""
    return _movement(
        idempotency_key,
        TransactionKind.PAYOUT,
        reference,
        debit=Account.operator_payable(operator_org_id),
        credit=PAYOUTS_IN_TRANSIT,
        amount=amount,
    )


def payout_sent(
    *, idempotency_key: str, reference: str, provider: str, amount: Money
) -> JournalTransaction:
    """The bank sent an instructed payout: the money leaves the exchange's account."""
    return _movement(
        idempotency_key,
        TransactionKind.PAYOUT,
        reference,
        debit=PAYOUTS_IN_TRANSIT,
        credit=Account.clearing(provider),
        amount=amount,
    )


def reverse(transaction: JournalTransaction, new_key: str) -> JournalTransaction:
    """The transaction that undoes ``transaction``: same postings, sides swapped.

    A reversal is not itself reversed: to redo what it undid, post the original movement again
    under a new key, which keeps every correction a forward entry in the audit trail.
    """
    if transaction.kind is TransactionKind.REVERSAL:
        raise ReversalError(
            f"{transaction.idempotency_key} is a reversal; post the movement again instead",
            field="reverses",
        )
    return JournalTransaction(
        idempotency_key=new_key,
        kind=TransactionKind.REVERSAL,
        postings=tuple(posting.reversed() for posting in transaction.postings),
        reference=transaction.reference,
        reverses=transaction.idempotency_key,
    )


def check_idempotent_replay(existing: JournalTransaction, new: JournalTransaction) -> None:
    """``new`` reuses ``existing``'s key: fine if it is the same transaction, else a conflict."""
    if existing.fingerprint() != new.fingerprint():
        raise IdempotencyConflictError(
            f"idempotency key {new.idempotency_key!r} was already used for a different transaction",
            field="idempotency_key",
        )


def check_reversal(
    original: JournalTransaction | None, reversal: JournalTransaction, *, already_reversed: bool
) -> None:
    """``reversal`` undoes exactly ``original``, which exists and has not been reversed yet."""
    if original is None:
        raise ReversalError(
            f"transaction {reversal.reverses!r} to reverse does not exist", field="reverses"
        )
    if already_reversed:
        raise ReversalError(
            f"transaction {original.idempotency_key!r} is already reversed", field="reverses"
        )
    if reverse(original, reversal.idempotency_key).fingerprint() != reversal.fingerprint():
        raise ReversalError(
            f"reversal {reversal.idempotency_key!r} does not mirror {original.idempotency_key!r}",
            field="postings",
        )


def balances(transactions: Iterable[JournalTransaction]) -> dict[tuple[Account, str], int]:
    """Every touched (account, currency) balance, debit minus credit, derived from the entries."""
    totals: defaultdict[tuple[Account, str], int] = defaultdict(int)
    for transaction in transactions:
        for posting in transaction.postings:
            totals[(posting.account, posting.amount.currency)] += posting.signed_amount_minor
    return dict(totals)


class Journal:
    """An append-only, in-memory journal enforcing idempotency and the reversal rules.

    Used to replay stored entries (reconciliation) and as the model in property tests; services
    persist through tables and call ``check_idempotent_replay`` / ``check_reversal`` themselves.
    """

    def __init__(self, transactions: Iterable[JournalTransaction] = ()) -> None:
        self._by_key: dict[str, JournalTransaction] = {}
        self._reversed_keys: set[str] = set()
        for transaction in transactions:
            self.post(transaction)

    def post(self, transaction: JournalTransaction) -> bool:
        """Append ``transaction``; False when it is a replay of one already posted under its key."""
        existing = self._by_key.get(transaction.idempotency_key)
        if existing is not None:
            check_idempotent_replay(existing, transaction)
            return False
        if transaction.reverses is not None:
            check_reversal(
                self._by_key.get(transaction.reverses),
                transaction,
                already_reversed=transaction.reverses in self._reversed_keys,
            )
            self._reversed_keys.add(transaction.reverses)
        self._by_key[transaction.idempotency_key] = transaction
        return True

    def get(self, idempotency_key: str) -> JournalTransaction | None:
        return self._by_key.get(idempotency_key)

    def is_reversed(self, idempotency_key: str) -> bool:
        return idempotency_key in self._reversed_keys

    def balances(self) -> dict[tuple[Account, str], int]:
        return balances(self._by_key.values())

    def balance(self, account: Account, currency: str) -> int:
        """Debit-minus-credit balance of one account in one currency (zero if never touched)."""
        return self.balances().get((account, currency), 0)

    def __iter__(self) -> Iterator[JournalTransaction]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)
