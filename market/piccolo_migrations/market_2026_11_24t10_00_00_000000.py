"""Partial refunds: each refund of an order, with the fee and operator shares it gave back, so
that what is still settled (and still reserved under the operator's ceiling) is always the
order's split minus its refunds. Append-only: a refund is never edited or removed."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trading: order refunds"

SQL = """
CREATE TABLE trading_order_refunds (
    order_id uuid NOT NULL REFERENCES trading_orders (id),
    -- 1, 2, ... per order: the provider refund's idempotency key ends in it.
    sequence integer NOT NULL CHECK (sequence >= 1),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    fee_minor bigint NOT NULL CHECK (fee_minor >= 0),
    operator_revenue_minor bigint NOT NULL CHECK (operator_revenue_minor >= 0),
    -- Whether the refund took back settled shares (settled_refund) or held money (refund).
    after_settlement boolean NOT NULL,
    provider_refund_id varchar(255),
    reason text NOT NULL CHECK (length(btrim(reason)) > 0),
    refunded_by varchar(200) NOT NULL,
    leaf_index bigint NOT NULL,
    refunded_at timestamptz NOT NULL,
    PRIMARY KEY (order_id, sequence),
    CHECK (fee_minor + operator_revenue_minor = amount_minor)
);

CREATE FUNCTION trading_order_refunds_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'trading_order_refunds is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER trading_order_refunds_append_only BEFORE UPDATE OR DELETE
    ON trading_order_refunds FOR EACH ROW EXECUTE FUNCTION trading_order_refunds_refuse_change();
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="market", description=DESCRIPTION)

    async def create_schema() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the schema and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
