"""Piccolo tables of orders (DDL, constraints and indexes:
market/piccolo_migrations/market_2026_11_22t13_00_00_000000.py).

The queries live in ``market.trading.orders`` and ``market.trading.delivery``; they speak SQL on
the current transaction's connection (``connection()``), because what they rely on (row locks,
advisory locks, ``ON CONFLICT``) is PostgreSQL's own. A new order is written by the database
function ``trading_place_order`` (market/piccolo_migrations/market_2026_11_25t11_20_00_000000.py),
whose ``trading_new_order`` type follows the order's columns: a migration that changes them
changes the type and the function with them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from piccolo.columns import (
    UUID,
    BigInt,
    BigSerial,
    Date,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class OrderRow(Table, tablename="trading_orders"):
    id = UUID(primary_key=True)
    buyer_org_id = UUID()
    placed_by = UUID()
    operator_org_id = UUID()
    product_id = UUID()
    purpose = Varchar(length=32)
    unit = Varchar(length=16)
    quantity = BigInt()
    term_start = Date()
    term_end = Date()
    currency = Varchar(length=3)
    unit_price_minor = BigInt()
    cap_minor = BigInt(null=True)
    gross_minor = BigInt()
    fee_minor = BigInt()
    operator_revenue_minor = BigInt()
    revenue_period = Varchar(length=7, null=True)
    state = Varchar(length=20)
    payment_provider = Varchar(length=32, null=True)
    payment_reference = Varchar(length=255, null=True)
    idempotency_key = Varchar(length=255)
    request_fingerprint = Varchar(length=64)
    expires_at = Timestamptz()
    created_at = Timestamptz()
    updated_at = Timestamptz()


class OrderEventRow(Table, tablename="trading_order_events"):
    id = BigSerial(primary_key=True)
    order_id = UUID()
    from_state = Varchar(length=20, null=True)
    to_state = Varchar(length=20)
    actor = Varchar(length=200)
    detail = Text()
    leaf_index = BigInt()
    occurred_at = Timestamptz()


class AccessGrantRow(Table, tablename="trading_access_grants"):
    id = UUID(primary_key=True)
    order_id = UUID(unique=True)
    buyer_org_id = UUID()
    operator_org_id = UUID()
    product_id = UUID()
    kind = Varchar(length=20)
    secret_hash = Varchar(length=64, null=True, unique=True)
    display_prefix = Varchar(length=16, null=True)
    call_quota = BigInt(null=True)
    calls_used = BigInt()
    seats = Integer(null=True)
    expires_at = Timestamptz()
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True)
    revocation_reason = Text(null=True)


ORDER_TABLES: list[type[Table]] = [OrderRow, OrderEventRow, AccessGrantRow]


@asynccontextmanager
async def statement_connection() -> AsyncIterator[Any]:
    """For one statement: the current transaction's connection, or else a pooled connection
    on which the statement commits by itself, saving the round trips of BEGIN and COMMIT."""
    engine = OrderRow._meta.db
    pool = getattr(engine, "pool", None)
    if pool is None or engine.current_transaction.get() is not None:
        async with connection() as joined:
            yield joined
        return
    async with pool.acquire() as pooled:
        yield pooled


@asynccontextmanager
async def connection() -> AsyncIterator[Any]:
    """The asyncpg connection of the current transaction, opening one if none is active (a
    nested use joins the caller's transaction, Piccolo's ``allow_nested``)."""
    async with OrderRow._meta.db.transaction() as transaction:
        yield transaction.connection
