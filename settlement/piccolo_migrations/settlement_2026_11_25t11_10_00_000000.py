"""The writes an order's placement makes in settlement, as database functions: the payment's
invoice and attempt, and the revenue reservation under the operator's ceiling. The order's own
statement calls them (``market``'s trading_place_order), so that placing an order is one round
trip and no lock is held while the application server takes its turn; settlement's own code
calls the same functions, so each statement has one home."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T11:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "settlement: functions for payment attempts, bank invoices and revenue reservations"

SQL = """
-- Revenue to add to an operator's period, and the effective ceiling the total must stay within.
CREATE TYPE settlement_revenue_reservation AS (
    operator_id varchar(128),
    period varchar(7),
    currency char(3),
    amount_minor bigint,
    limit_minor bigint
);

-- Adds the amount if the total stays within the limit, creating the counter on first use;
-- false, and nothing written, if it would not. The check reads the total under the counter's
-- row lock, which the caller's transaction holds until it ends, so concurrent additions queue
-- on the row and each checks the total the previous one committed.
CREATE FUNCTION settlement_reserve_revenue(reservation settlement_revenue_reservation)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO revenue_counters AS counter (operator_id, period, currency,
                                             committed_revenue_minor)
        VALUES (reservation.operator_id, reservation.period, reservation.currency,
                reservation.amount_minor)
        ON CONFLICT (operator_id, period) DO UPDATE
        SET committed_revenue_minor = counter.committed_revenue_minor
                                      + EXCLUDED.committed_revenue_minor,
            updated_at = now()
        WHERE counter.currency = EXCLUDED.currency
          AND counter.committed_revenue_minor + EXCLUDED.committed_revenue_minor
              <= reservation.limit_minor;
    RETURN FOUND;
END
$$;

-- A payment attempt as settlement.payments.attempts writes it.
CREATE TYPE settlement_payment_attempt AS (
    id uuid,
    order_id varchar(128),
    provider varchar(32),
    idempotency_key varchar(255),
    request_fingerprint char(64),
    amount_minor bigint,
    currency char(3),
    connected_account varchar(255),
    application_fee_minor bigint,
    provider_payment_id varchar(255),
    status varchar(24)
);

-- The new attempt, or no row when its key's attempt was stored before (a retry).
CREATE FUNCTION settlement_insert_payment_attempt(attempt settlement_payment_attempt)
RETURNS SETOF payment_attempts LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    INSERT INTO payment_attempts (id, order_id, provider, idempotency_key, request_fingerprint,
                                  amount_minor, currency, connected_account,
                                  application_fee_minor, provider_payment_id, status)
        VALUES (attempt.id, attempt.order_id, attempt.provider, attempt.idempotency_key,
                attempt.request_fingerprint, attempt.amount_minor, attempt.currency,
                attempt.connected_account, attempt.application_fee_minor,
                attempt.provider_payment_id, attempt.status)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING *;
END
$$;

-- A bank transfer invoice as settlement.payments.bank_transfer issues it.
CREATE TYPE settlement_bank_invoice AS (
    id uuid,
    reference varchar(40),
    order_id varchar(128),
    buyer_org_id varchar(128),
    idempotency_key varchar(255),
    amount_minor bigint,
    currency char(3)
);

-- Whether the invoice was issued; false when its key's invoice was issued before (a retry).
CREATE FUNCTION settlement_insert_bank_invoice(invoice settlement_bank_invoice)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bank_invoices (id, reference, order_id, buyer_org_id, idempotency_key,
                               amount_minor, currency)
        VALUES (invoice.id, invoice.reference, invoice.order_id, invoice.buyer_org_id,
                invoice.idempotency_key, invoice.amount_minor, invoice.currency)
        ON CONFLICT (idempotency_key) DO NOTHING;
    RETURN FOUND;
END
$$;

-- The payment of a new order, written by the order's own statement: its invoice when the
-- provider issues one, then the attempt naming it. Both keys derive from the new order's id,
-- so either being taken already is a fault, never a retry.
CREATE FUNCTION settlement_start_payment(attempt settlement_payment_attempt,
                                         invoice settlement_bank_invoice)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF invoice.id IS NOT NULL AND NOT settlement_insert_bank_invoice(invoice) THEN
        RAISE EXCEPTION 'bank invoice key % is taken already', invoice.idempotency_key
            USING ERRCODE = 'unique_violation';
    END IF;
    IF NOT EXISTS (SELECT FROM settlement_insert_payment_attempt(attempt)) THEN
        RAISE EXCEPTION 'payment attempt key % is taken already', attempt.idempotency_key
            USING ERRCODE = 'unique_violation';
    END IF;
END
$$;
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="settlement", description=DESCRIPTION)

    async def create_functions() -> None:
        # On the migration transaction's connection, so the functions and the migration record
        # commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_functions)
    return manager
