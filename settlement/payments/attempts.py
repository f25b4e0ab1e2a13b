"""Payment attempts: the row written (and committed) before a provider is called.

A crash after the commit but before, during or after the provider call is retried by calling
``start_payment`` again: the attempt's deterministic idempotency key makes the provider return
the payment it already created instead of charging twice, and a payment id already stored is
looked up instead of created. Calls to outside providers never run inside a database
transaction, so no row lock is held while waiting on the network; a provider that only writes our
own database (bank transfer invoices) may run inside the order's transaction instead. Such a
provider's payment and its attempt are written in one transaction, so nothing can happen between
them that a retry must find: the payment is created first and the attempt is written once,
already naming it. A new order's payment is made here but written by the order's own statement
(``prepare_payment_start``), through the same database functions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from settlement.errors import IdempotencyConflictError
from settlement.money import Money
from settlement.payments.provider import (
    PaymentProvider,
    PaymentRequest,
    PaymentStatus,
    ProviderPayment,
)
from settlement.tables import in_transaction, transaction_connection


def payment_idempotency_key(order_id: str, attempt_number: int = 1) -> str:
    """The deterministic key of an order's n-th payment attempt (a new attempt after a failed
    or canceled one takes the next number)."""
    return f"order:{order_id}:payment:{attempt_number}"


@dataclass(frozen=True, slots=True)
class PaymentAttempt:
    id: uuid.UUID
    order_id: str
    provider: str
    idempotency_key: str
    amount: Money
    provider_payment_id: str | None
    status: PaymentStatus


def _attempt(row: Any) -> PaymentAttempt:
    return PaymentAttempt(
        id=row["id"],
        order_id=row["order_id"],
        provider=row["provider"],
        idempotency_key=row["idempotency_key"],
        amount=Money(row["amount_minor"], row["currency"]),
        provider_payment_id=row["provider_payment_id"],
        status=PaymentStatus(row["status"]),
    )


# A new attempt, or no row when its key's attempt was stored before (a retry).
_INSERT_ATTEMPT = (
    "SELECT * FROM settlement_insert_payment_attempt($1::settlement_payment_attempt)")


def _attempt_row(provider_name: str, request: PaymentRequest, fingerprint: str,
                 payment: ProviderPayment | None) -> tuple[object, ...]:
    """The attempt as ``settlement_payment_attempt``. With ``payment`` it names the provider's
    payment and status already; without, the provider is yet to be called."""
    return (
        uuid.uuid4(), request.order_id, provider_name, request.idempotency_key, fingerprint,
        request.amount.amount_minor, request.amount.currency, request.connected_account,
        None if request.application_fee is None else request.application_fee.amount_minor,
        None if payment is None else payment.provider_payment_id,
        (PaymentStatus.CREATED if payment is None else payment.status).value,
    )


async def _insert_attempt(connection: Any, provider_name: str, request: PaymentRequest,
                          fingerprint: str, payment: ProviderPayment | None) -> Any:
    return await connection.fetchrow(
        _INSERT_ATTEMPT, _attempt_row(provider_name, request, fingerprint, payment))


@dataclass(frozen=True, slots=True)
class PaymentStart:
    """A new order's payment at a provider ``in_database``, made but not written: the two
    values ``settlement_start_payment`` takes (the attempt, and the provider's row such as a
    bank invoice), so that the order's own statement writes them and the payment costs it no
    round trip. A retry of the order finds them through ``start_payment``."""

    payment: ProviderPayment
    attempt: tuple[object, ...]
    provider_row: tuple[object, ...]


async def prepare_payment_start(provider: PaymentProvider,
                                request: PaymentRequest) -> PaymentStart:
    prepared = await provider.prepare_payment(request)
    return PaymentStart(
        payment=prepared.payment,
        attempt=_attempt_row(provider.name, request, request.fingerprint(), prepared.payment),
        provider_row=prepared.row)


async def record_attempt(provider_name: str, request: PaymentRequest) -> PaymentAttempt:
    """Store the attempt (or find it again under its key). Call it inside the order's
    transaction, so the order and its attempt commit together; IdempotencyConflictError if the
    key was used for a different request."""
    fingerprint = request.fingerprint()
    async with transaction_connection() as connection:
        row = await _insert_attempt(connection, provider_name, request, fingerprint, None)
        if row is None:  # the key's attempt was stored before: a retry
            row = await connection.fetchrow(
                "SELECT * FROM payment_attempts WHERE idempotency_key = $1",
                request.idempotency_key)
    if row["request_fingerprint"] != fingerprint or row["provider"] != provider_name:
        raise IdempotencyConflictError(
            f"payment key {request.idempotency_key!r} was already used for a different request",
            field="idempotency_key",
        )
    return _attempt(row)


async def start_payment(provider: PaymentProvider, request: PaymentRequest) -> ProviderPayment:
    """Create the provider payment for ``request`` exactly once, however often it is retried.

    A provider that only writes our own database may be started inside the order's
    transaction (the order and its payment then commit together); any other is called only
    after that commit, so no lock is held while waiting on its network."""
    if provider.in_database:
        return await _start_in_database(provider, request)
    if in_transaction():
        raise RuntimeError("call the payment provider after the order's transaction commits")
    attempt = await record_attempt(provider.name, request)
    if attempt.provider_payment_id is not None:
        payment = await provider.fetch_status(attempt.provider_payment_id)
    else:
        # Same key as any earlier, interrupted call: the provider answers with that payment.
        payment = await provider.create_payment(request)
        if await _store_payment(attempt, payment):
            return payment
    await advance_status(provider.name, payment.provider_payment_id, payment.status)
    return payment


async def _start_in_database(provider: PaymentProvider,
                             request: PaymentRequest) -> ProviderPayment:
    """A provider that only writes our own database: its payment, then the attempt naming it,
    in one transaction (the caller's, or one of its own), so a new payment costs one write of
    its attempt instead of a write and an update; anything refused rolls both back."""
    async with transaction_connection() as connection:
        # Same key as any earlier call: the provider answers with that payment.
        payment = await provider.create_payment(request)
        if await _insert_attempt(connection, provider.name, request, request.fingerprint(),
                                 payment) is not None:
            return payment
        # A retry: the attempt is there already (checked against this request).
        attempt = await record_attempt(provider.name, request)
        if attempt.provider_payment_id is None and await _store_payment(attempt, payment):
            return payment
        await advance_status(provider.name, payment.provider_payment_id, payment.status)
        return payment


async def _store_payment(attempt: PaymentAttempt, payment: ProviderPayment) -> bool:
    """Record the provider's payment id on an attempt that had none, moving it to the payment's
    status if that is a forward move, in one statement; False if another call stored it first
    (its status then moves through ``advance_status``)."""
    moves_from = [status.value for status in PaymentStatus if status.can_move_to(payment.status)]
    async with transaction_connection() as connection:
        stored = await connection.fetchval(
            "UPDATE payment_attempts SET provider_payment_id = $2, status = CASE WHEN "
            "status = ANY($3::varchar[]) THEN $4 ELSE status END, updated_at = now() "
            "WHERE id = $1 AND provider_payment_id IS NULL RETURNING id",
            attempt.id, payment.provider_payment_id, moves_from, payment.status.value,
        )
    return stored is not None


async def advance_status(provider_name: str, provider_payment_id: str,
                         status: PaymentStatus) -> tuple[PaymentAttempt | None, bool]:
    """Move the attempt for a provider payment to ``status`` if that is a forward move.

    Returns the attempt (None if no attempt has that payment id) and whether it moved, so an
    event that arrives late or twice changes nothing.
    """
    async with transaction_connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM payment_attempts WHERE provider = $1 AND provider_payment_id = $2 "
            "FOR UPDATE", provider_name, provider_payment_id)
        if row is None:
            return None, False
        attempt = _attempt(row)
        if not attempt.status.can_move_to(status):
            return attempt, False
        await connection.execute(
            "UPDATE payment_attempts SET status = $2, updated_at = now() WHERE id = $1",
            attempt.id, status.value)
        return PaymentAttempt(attempt.id, attempt.order_id, attempt.provider,
                              attempt.idempotency_key, attempt.amount,
                              attempt.provider_payment_id, status), True


async def attempts_for_order(order_id: str) -> list[PaymentAttempt]:
    async with transaction_connection() as connection:
        rows = await connection.fetch(
            "SELECT * FROM payment_attempts WHERE order_id = $1 ORDER BY created_at, id",
            order_id)
    return [_attempt(row) for row in rows]


async def attempt_for_payment(provider_name: str,
                              provider_payment_id: str) -> PaymentAttempt | None:
    async with transaction_connection() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM payment_attempts WHERE provider = $1 AND provider_payment_id = $2",
            provider_name, provider_payment_id)
    return None if row is None else _attempt(row)
