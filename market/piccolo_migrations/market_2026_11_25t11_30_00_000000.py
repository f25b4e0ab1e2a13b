"""Drop trading_orders_payment: nothing looks an order up by its payment reference (a payment is
traced through its attempt, payment_attempts.order_id), so the index only cost every placed
order an entry to write."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T11:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "market: drop the unread index of orders by payment reference"

SQL = "DROP INDEX trading_orders_payment;"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="market", description=DESCRIPTION)

    async def drop_index() -> None:
        # Run on the migration transaction's connection, as the other market migrations do.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(drop_index)
    return manager
