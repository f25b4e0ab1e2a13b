"""Placing an order as one database function: the order row, its payment's rows, the revenue
reservation under the operator's ceiling, the ledger leaf and the history row, in one call.

Called on its own, the call is one statement and commits by itself, so the contended locks (the
operator's revenue counter, the ledger head) are held from their statement to the commit
without waiting on the application server between statements. Settlement's and the ledger's
rows are written by their own functions (their migrations of 2026-11-25), so each statement
keeps one home; this function only orders the steps.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T11:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "market: trading_place_order, an order placed in one call"

SQL = """
-- A new order, as market.trading.orders builds it (its columns of trading_orders).
CREATE TYPE trading_new_order AS (
    id uuid,
    buyer_org_id uuid,
    placed_by uuid,
    operator_org_id uuid,
    product_id uuid,
    purpose varchar(32),
    unit varchar(16),
    quantity bigint,
    term_start date,
    term_end date,
    currency char(3),
    unit_price_minor bigint,
    cap_minor bigint,
    gross_minor bigint,
    fee_minor bigint,
    operator_revenue_minor bigint,
    revenue_period varchar(7),
    state varchar(20),
    payment_provider varchar(32),
    payment_reference varchar(255),
    payment_destination varchar(255),
    idempotency_key varchar(255),
    request_fingerprint char(64),
    expires_at timestamptz,
    placed_at timestamptz,
    registration_code varchar(40),
    registered_at varchar(255)
);

-- The order row first: a key the buyer used before returns false and writes nothing. Then the
-- payment (NULL attempt: none, or one started after the commit), the reservation (NULL: no
-- revenue to reserve; SQLSTATE PX001 when the ceiling has no room, which undoes the call), and
-- last, under the ledger head's lock, the leaf and the history row that names it.
CREATE FUNCTION trading_place_order(
    new_order trading_new_order,
    payment_attempt settlement_payment_attempt,
    payment_row settlement_bank_invoice,
    reservation settlement_revenue_reservation,
    entry ledger_entry,
    actor varchar(200),
    detail text
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    leaf record;
BEGIN
    INSERT INTO trading_orders (
        id, buyer_org_id, placed_by, operator_org_id, product_id, purpose, unit, quantity,
        term_start, term_end, currency, unit_price_minor, cap_minor, gross_minor, fee_minor,
        operator_revenue_minor, revenue_period, state, payment_provider, payment_reference,
        payment_destination, idempotency_key, request_fingerprint, expires_at, created_at,
        updated_at, registration_code, registered_at)
    VALUES (
        new_order.id, new_order.buyer_org_id, new_order.placed_by, new_order.operator_org_id,
        new_order.product_id, new_order.purpose, new_order.unit, new_order.quantity,
        new_order.term_start, new_order.term_end, new_order.currency, new_order.unit_price_minor,
        new_order.cap_minor, new_order.gross_minor, new_order.fee_minor,
        new_order.operator_revenue_minor, new_order.revenue_period, new_order.state,
        new_order.payment_provider, new_order.payment_reference, new_order.payment_destination,
        new_order.idempotency_key, new_order.request_fingerprint, new_order.expires_at,
        new_order.placed_at, new_order.placed_at, new_order.registration_code,
        new_order.registered_at)
    ON CONFLICT (buyer_org_id, idempotency_key) DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF payment_attempt.id IS NOT NULL THEN
        PERFORM settlement_start_payment(payment_attempt, payment_row);
    END IF;
    IF reservation.operator_id IS NOT NULL AND NOT settlement_reserve_revenue(reservation) THEN
        RAISE EXCEPTION 'the operator''s maximum permitted revenue for % has no room for this '
                        'order', reservation.period USING ERRCODE = 'PX001';
    END IF;
    SELECT * INTO leaf FROM ledger_append(entry);
    INSERT INTO trading_order_events (order_id, from_state, to_state, actor, detail,
                                      leaf_index, occurred_at)
        VALUES (new_order.id, NULL, new_order.state, actor, detail, leaf.leaf_index,
                new_order.placed_at);
    RETURN true;
END
$$;
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="market", description=DESCRIPTION)

    async def create_function() -> None:
        # Run on the migration transaction's connection, as the other market migrations do.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_function)
    return manager
