"""An offer on a demand keeps why it was declined, so that reconciliation can rebuild its
decline leaf: a decline by the buyer logs the whole offer, one that follows the demand (matched
by another offer, or closed) logs the reason instead. Offers declined before this column have
none (NULL); their decline leaf is then compared on what every decline logs."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trading: why an offer on a demand was declined"

SQL = """
ALTER TABLE trading_offers ADD COLUMN decline_reason text
    CHECK (decline_reason IS NULL OR state = 'declined');
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="market", description=DESCRIPTION)

    async def alter_schema() -> None:
        # Run on the migration transaction's connection, as the other market migrations do.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(alter_schema)
    return manager
