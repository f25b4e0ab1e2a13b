"""Operators' Stripe Connect accounts: the connected account an operator organisation's card
sales are transferred to, recorded by staff, and the destination each card order was placed
with (pinned at placement, so a later change of account never redirects an order's money or
breaks the payment's idempotent retry)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trading: operators' connected accounts, card orders' payment destination"

SQL = """
CREATE TABLE trading_connected_accounts (
    organisation_id uuid PRIMARY KEY REFERENCES organisations (id),
    provider varchar(32) NOT NULL CHECK (provider = 'stripe'),
    -- Stripe account ids are "acct_" and an alphanumeric tail (checked again by the use case).
    account_id varchar(255) NOT NULL CHECK (account_id ~ '^acct_[A-Za-z0-9]{1,250}$'),
    recorded_by varchar(200) NOT NULL,
    leaf_index bigint NOT NULL,
    recorded_at timestamptz NOT NULL
);

ALTER TABLE trading_orders ADD COLUMN payment_destination varchar(255)
    CHECK (payment_destination ~ '^acct_[A-Za-z0-9]{1,250}$');
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
