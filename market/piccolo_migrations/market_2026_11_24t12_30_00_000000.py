"""Orders name the registration code they are made under and, for a product listed here by
recognition, the peer exchange that registered it (互认互通: a cross-exchange trade is provable
with the registering exchange's code)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T12:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders: registration code and registering exchange"

SQL = """
ALTER TABLE trading_orders ADD COLUMN registration_code varchar(40);
ALTER TABLE trading_orders ADD COLUMN registered_at varchar(255)
    CHECK (registered_at IS NULL OR registration_code IS NOT NULL);
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
