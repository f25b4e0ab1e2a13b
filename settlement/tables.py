"""Piccolo tables of the settlement package.

The DDL, with the balance and append-only triggers, is in settlement/piccolo_migrations; these
classes register the tables with Piccolo. The stores speak SQL through ``transaction_connection``
on the engine's current transaction, because the rules they rely on (row locks, ``ON CONFLICT``,
deferred constraint triggers) are PostgreSQL's own. Payment attempts, bank invoices and revenue
reservations are written through database functions whose argument types follow the tables'
columns (settlement/piccolo_migrations/settlement_2026_11_25t11_10_00_000000.py): a migration
that changes those columns changes the types and functions with them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from piccolo.columns import (
    UUID,
    Array,
    BigInt,
    Date,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class JournalTransactionRow(Table, tablename="journal_transactions"):
    id = BigInt(primary_key=True)
    idempotency_key = Varchar(length=255, unique=True)
    kind = Varchar(length=32)
    reference = Varchar(length=255)
    reverses_id = BigInt(null=True)
    fingerprint = Varchar(length=64)
    posted_at = Timestamptz()


class JournalPostingRow(Table, tablename="journal_postings"):
    id = BigInt(primary_key=True)
    transaction_id = BigInt()
    account = Varchar(length=160)
    direction = Varchar(length=6)
    currency = Varchar(length=3)
    amount_minor = BigInt()


class FeeCapRow(Table, tablename="fee_caps"):
    id = BigInt(primary_key=True)
    product_id = Varchar(length=128)
    purpose = Varchar(length=32)
    unit = Varchar(length=16)
    cap_minor = BigInt()
    currency = Varchar(length=3)
    effective_from = Date()
    effective_to = Date(null=True)
    approved_by = Varchar(length=128)
    approval_reference = Varchar(length=200)
    recorded_at = Timestamptz()


class RevenueCeilingRow(Table, tablename="revenue_ceilings"):
    id = BigInt(primary_key=True)
    operator_id = Varchar(length=128)
    period = Varchar(length=7)
    version = Integer()
    currency = Varchar(length=3)
    operating_cost_minor = BigInt()
    permitted_profit_minor = BigInt()
    tax_minor = BigInt()
    approved_minor = BigInt()
    approved_by = Varchar(length=128)
    approval_reference = Varchar(length=200)
    recorded_at = Timestamptz()


class RevenueCounterRow(Table, tablename="revenue_counters"):
    # The real key is (operator_id, period); Piccolo needs one column named as the key.
    operator_id = Varchar(length=128, primary_key=True)
    period = Varchar(length=7)
    currency = Varchar(length=3)
    committed_revenue_minor = BigInt()
    updated_at = Timestamptz()


class FreeUseEligibilityRow(Table, tablename="free_use_eligibilities"):
    id = UUID(primary_key=True)
    buyer_org_id = Varchar(length=128)
    purposes = Array(base_column=Varchar(length=32))
    valid_from = Date()
    valid_to = Date()
    evidence = Text()
    granted_by = Varchar(length=128)
    granted_at = Timestamptz()
    revoked_at = Timestamptz(null=True)
    revoked_by = Varchar(length=128, null=True)
    revocation_reason = Text(null=True)


class PaymentAttemptRow(Table, tablename="payment_attempts"):
    id = UUID(primary_key=True)
    order_id = Varchar(length=128)
    provider = Varchar(length=32)
    idempotency_key = Varchar(length=255, unique=True)
    request_fingerprint = Varchar(length=64)
    amount_minor = BigInt()
    currency = Varchar(length=3)
    connected_account = Varchar(length=255, null=True)
    application_fee_minor = BigInt(null=True)
    provider_payment_id = Varchar(length=255, null=True, unique=True)
    status = Varchar(length=24)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class ProcessedWebhookEventRow(Table, tablename="processed_webhook_events"):
    # The real key is (provider, event_id).
    event_id = Varchar(length=255, primary_key=True)
    provider = Varchar(length=32)
    event_type = Varchar(length=128)
    outcome = Varchar(length=64)
    received_at = Timestamptz()


class BankInvoiceRow(Table, tablename="bank_invoices"):
    id = UUID(primary_key=True)
    reference = Varchar(length=40, unique=True)
    order_id = Varchar(length=128)
    buyer_org_id = Varchar(length=128)
    idempotency_key = Varchar(length=255, unique=True)
    amount_minor = BigInt()
    currency = Varchar(length=3)
    issued_at = Timestamptz()


class BankReceiptRow(Table, tablename="bank_receipts"):
    id = UUID(primary_key=True)
    invoice_id = UUID()
    bank_transaction_ref = Varchar(length=128, unique=True)
    amount_minor = BigInt()
    currency = Varchar(length=3)
    received_on = Date()
    confirmed_by = Varchar(length=128)
    confirmed_at = Timestamptz()


class BankRefundRow(Table, tablename="bank_refunds"):
    id = UUID(primary_key=True)
    invoice_id = UUID()
    idempotency_key = Varchar(length=255, unique=True)
    amount_minor = BigInt()
    currency = Varchar(length=3)
    reason = Varchar(length=200)
    requested_at = Timestamptz()


SETTLEMENT_TABLES: list[type[Table]] = [
    JournalTransactionRow,
    JournalPostingRow,
    FeeCapRow,
    RevenueCeilingRow,
    RevenueCounterRow,
    FreeUseEligibilityRow,
    PaymentAttemptRow,
    ProcessedWebhookEventRow,
    BankInvoiceRow,
    BankReceiptRow,
    BankRefundRow,
]


@asynccontextmanager
async def transaction_connection() -> AsyncIterator[Any]:
    """The asyncpg connection of the current Piccolo transaction, opening one if none is active.

    Nested use joins the caller's transaction (Piccolo's ``allow_nested``), so a store function
    called inside a use case's transaction commits or rolls back with it.
    """
    engine = JournalTransactionRow._meta.db
    async with engine.transaction() as transaction:
        yield transaction.connection


@asynccontextmanager
async def statement_connection() -> AsyncIterator[Any]:
    """For one statement: the current transaction's connection, or else a pooled connection
    on which the statement commits by itself, saving the round trips of BEGIN and COMMIT."""
    engine = JournalTransactionRow._meta.db
    pool = getattr(engine, "pool", None)
    if pool is None or engine.current_transaction.get() is not None:
        async with engine.transaction() as transaction:  # joins the current one, if any
            yield transaction.connection
        return
    async with pool.acquire() as connection:
        yield connection


def in_transaction() -> bool:
    return JournalTransactionRow._meta.db.current_transaction.get() is not None
