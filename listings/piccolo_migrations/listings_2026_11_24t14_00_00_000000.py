"""Listings: indexes on updated_at, which the matchers read to find the products (and the
authorizations they are listed under) changed since their last sync."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "updated_at indexes for the matchers' incremental sync"

SQL = """
CREATE INDEX listings_products_updated ON listings_products (updated_at);
CREATE INDEX listings_authorizations_updated ON listings_authorizations (updated_at);
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="listings", description=DESCRIPTION)

    async def alter_schema() -> None:
        # Run on the migration transaction's connection, as the other listings migrations do.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(alter_schema)
    return manager
