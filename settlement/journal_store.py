"""Persisting journal transactions, and balances derived from them by SQL.

The domain model (settlement/journal.py) builds balanced transactions; this store writes them
once under their idempotency key and appends a ledger record in the same database transaction.
The database re-checks the balance itself at commit (a deferred constraint trigger), so even a
raw INSERT that bypasses this module cannot leave an unbalanced transaction behind.

Every function joins the caller's transaction when one is active (a use case that posts a
journal entry together with its own rows) and opens its own otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ledger.entries import JSONValue
from ledger.log import append_record
from settlement.errors import IdempotencyConflictError, ReversalError
from settlement.journal import (
    Account,
    Direction,
    JournalTransaction,
    Posting,
    TransactionKind,
    check_reversal,
)
from settlement.money import Money
from settlement.tables import transaction_connection

LEDGER_KIND = "settlement.journal_transaction"


@dataclass(frozen=True, slots=True)
class PostedTransaction:
    """A stored transaction; ``created`` is False when the call was a replay of its key."""

    id: int
    transaction: JournalTransaction
    posted_at: datetime
    created: bool


_SELECT_TRANSACTION = """
SELECT t.id, t.idempotency_key, t.kind, t.reference, t.fingerprint, t.posted_at,
       original.idempotency_key AS reverses
  FROM journal_transactions t
  LEFT JOIN journal_transactions original ON original.id = t.reverses_id
"""


async def _postings(connection: Any, transaction_ids: list[int]) -> dict[int, list[Posting]]:
    rows = await connection.fetch(
        "SELECT transaction_id, account, direction, currency, amount_minor "
        "FROM journal_postings WHERE transaction_id = ANY($1::bigint[]) ORDER BY id",
        transaction_ids,
    )
    by_transaction: dict[int, list[Posting]] = {}
    for row in rows:
        by_transaction.setdefault(row["transaction_id"], []).append(
            Posting(
                Account.parse(row["account"]),
                Direction(row["direction"]),
                Money(row["amount_minor"], row["currency"]),
            )
        )
    return by_transaction


async def _hydrate(connection: Any, rows: list[Any]) -> list[PostedTransaction]:
    postings = await _postings(connection, [row["id"] for row in rows])
    return [
        PostedTransaction(
            id=row["id"],
            transaction=JournalTransaction(
                idempotency_key=row["idempotency_key"],
                kind=TransactionKind(row["kind"]),
                postings=tuple(postings.get(row["id"], ())),
                reference=row["reference"],
                reverses=row["reverses"],
            ),
            posted_at=row["posted_at"],
            created=False,
        )
        for row in rows
    ]


async def _find(connection: Any, idempotency_key: str) -> PostedTransaction | None:
    rows = await connection.fetch(_SELECT_TRANSACTION + " WHERE t.idempotency_key = $1",
                                  idempotency_key)
    hydrated = await _hydrate(connection, rows)
    return hydrated[0] if hydrated else None


async def _replay(
    connection: Any, transaction: JournalTransaction, fingerprint: str
) -> PostedTransaction | None:
    """The stored transaction if ``transaction``'s key was used before for the same one."""
    row = await connection.fetchrow(
        "SELECT fingerprint FROM journal_transactions WHERE idempotency_key = $1",
        transaction.idempotency_key,
    )
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise IdempotencyConflictError(
            f"idempotency key {transaction.idempotency_key!r} was already used for a different "
            "transaction",
            field="idempotency_key",
        )
    return await _find(connection, transaction.idempotency_key)


def ledger_payload(transaction: JournalTransaction, fingerprint: str) -> dict[str, JSONValue]:
    # Amounts as decimal strings: RFC 8785 numbers are IEEE doubles, exact only to 2**53.
    postings: list[JSONValue] = [
        {
            "account": posting.account.name,
            "direction": posting.direction.value,
            "currency": posting.amount.currency,
            "amount_minor": str(posting.amount.amount_minor),
        }
        for posting in transaction.postings
    ]
    return {
        "idempotency_key": transaction.idempotency_key,
        "kind": transaction.kind.value,
        "reference": transaction.reference,
        "reverses": transaction.reverses,
        "fingerprint": fingerprint,
        "postings": postings,
    }


async def post(transaction: JournalTransaction, *, actor: str) -> PostedTransaction:
    """Write ``transaction`` and its ledger record, or return the one already stored under its
    key if it is the same transaction (IdempotencyConflictError if it is not).

    A reversal must mirror an existing, not yet reversed, original (ReversalError otherwise).
    """
    fingerprint = transaction.fingerprint()
    async with transaction_connection() as connection:
        replayed = await _replay(connection, transaction, fingerprint)
        if replayed is not None:
            return replayed
        reverses_id: int | None = None
        if transaction.reverses is not None:
            original = await _find(connection, transaction.reverses)
            already_reversed = original is not None and await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM journal_transactions WHERE reverses_id = $1)",
                original.id,
            )
            check_reversal(
                None if original is None else original.transaction,
                transaction,
                already_reversed=bool(already_reversed),
            )
            assert original is not None  # check_reversal refused a missing original
            reverses_id = original.id
        try:
            row = await connection.fetchrow(
                "INSERT INTO journal_transactions "
                "(idempotency_key, kind, reference, reverses_id, fingerprint) "
                "VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, posted_at",
                transaction.idempotency_key,
                transaction.kind.value,
                transaction.reference,
                reverses_id,
                fingerprint,
            )
        except asyncpg.UniqueViolationError as error:
            # reverses_id is UNIQUE: a concurrent reversal of the same original committed first.
            raise ReversalError(
                f"transaction {transaction.reverses!r} is already reversed", field="reverses"
            ) from error
        if row is None:
            # A concurrent post of the same key committed between our check and our insert.
            raced = await _replay(connection, transaction, fingerprint)
            assert raced is not None
            return raced
        await connection.execute(
            "INSERT INTO journal_postings (transaction_id, account, direction, currency, "
            "amount_minor) SELECT $1, * FROM unnest($2::varchar[], $3::varchar[], $4::char(3)[], "
            "$5::bigint[])",
            row["id"],
            [posting.account.name for posting in transaction.postings],
            [posting.direction.value for posting in transaction.postings],
            [posting.amount.currency for posting in transaction.postings],
            [posting.amount.amount_minor for posting in transaction.postings],
        )
        await append_record(
            LEDGER_KIND,
            actor=actor,
            subject=f"journal:{transaction.idempotency_key}"[:200],
            payload=ledger_payload(transaction, fingerprint),
        )
        return PostedTransaction(
            id=row["id"], transaction=transaction, posted_at=row["posted_at"], created=True
        )


async def get(idempotency_key: str) -> PostedTransaction | None:
    async with transaction_connection() as connection:
        return await _find(connection, idempotency_key)


async def for_reference(reference: str) -> list[PostedTransaction]:
    """Every transaction about one business record (e.g. ``order:<id>``), oldest first."""
    async with transaction_connection() as connection:
        rows = await connection.fetch(
            _SELECT_TRANSACTION + " WHERE t.reference = $1 ORDER BY t.id", reference
        )
        return await _hydrate(connection, rows)


async def all_transactions() -> list[PostedTransaction]:
    """The whole journal, oldest first: for reconciliation replays through ``journal.Journal``."""
    async with transaction_connection() as connection:
        rows = await connection.fetch(_SELECT_TRANSACTION + " ORDER BY t.id")
        return await _hydrate(connection, rows)


async def is_reversed(idempotency_key: str) -> bool:
    async with transaction_connection() as connection:
        return bool(
            await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM journal_transactions reversal "
                "JOIN journal_transactions original ON original.id = reversal.reverses_id "
                "WHERE original.idempotency_key = $1)",
                idempotency_key,
            )
        )


_SIGNED = "CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END"


async def balance(account: Account, currency: str) -> int:
    """Debit-minus-credit balance of one account in one currency, derived from the postings."""
    async with transaction_connection() as connection:
        value = await connection.fetchval(
            f"SELECT COALESCE(sum({_SIGNED}), 0) FROM journal_postings "  # noqa: S608 (constant)
            "WHERE account = $1 AND currency = $2",
            account.name,
            currency,
        )
        return int(value)


async def balances(accounts: Iterable[Account] | None = None) -> dict[tuple[Account, str], int]:
    """Every touched (account, currency) balance, debit minus credit, or only of ``accounts``."""
    names = None if accounts is None else [account.name for account in accounts]
    async with transaction_connection() as connection:
        rows = await connection.fetch(
            f"SELECT account, currency, sum({_SIGNED}) AS balance "  # noqa: S608 (constant)
            "FROM journal_postings WHERE $1::varchar[] IS NULL OR account = ANY($1::varchar[]) "
            "GROUP BY account, currency",
            names,
        )
        return {(Account.parse(row["account"]), row["currency"]): int(row["balance"])
                for row in rows}


async def unbalanced_currencies() -> dict[str, int]:
    """Currencies whose postings do not sum to zero across the whole journal: always empty
    while the balance trigger is in place; reconciliation reports anything else."""
    async with transaction_connection() as connection:
        rows = await connection.fetch(
            f"SELECT currency, sum({_SIGNED}) AS net FROM journal_postings "  # noqa: S608
            f"GROUP BY currency HAVING sum({_SIGNED}) <> 0"
        )
        return {row["currency"]: int(row["net"]) for row in rows}
