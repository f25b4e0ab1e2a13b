"""Drop bank_invoices_order_id: invoices are found by reference, key or id, never by order id
(an order names its invoice's reference), so the index only cost every new invoice an entry to
write."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T11:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "settlement: drop the unread index of bank invoices by order id"

SQL = "DROP INDEX bank_invoices_order_id;"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="settlement", description=DESCRIPTION)

    async def drop_index() -> None:
        # On the migration transaction's connection, so the change and the migration record
        # commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(drop_index)
    return manager
