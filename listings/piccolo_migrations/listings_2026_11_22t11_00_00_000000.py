"""Listings: the catalog's full-text index takes its entries at write time, not in a pending
list that every search has to read."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "catalog search index without a pending list"

SQL = """
-- With fastupdate (the default) new entries go to an unsorted pending list that each search
-- scans in full until a vacuum merges it into the index: after loading 100,000 products it
-- held 312 pages, and a search read all of them (2 ms and 320 buffers of a 10 ms search).
-- Listing and delisting are rare next to searches, so the merge is paid by the write instead.
ALTER INDEX listings_products_search SET (fastupdate = off);
-- Turning fastupdate off leaves entries already pending where they are: merge them now.
SELECT gin_clean_pending_list('listings_products_search'::regclass);
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="listings", description=DESCRIPTION)

    async def tune_index() -> None:
        # Run on the migration transaction's connection, as the other listings migration does.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(tune_index)
    return manager
