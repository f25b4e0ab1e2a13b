"""Listings: products listed here by recognition of a peer exchange's registration
(一地上架,全国互认) carry that exchange's origin and no local authorization."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "products recognised from a peer exchange's registration"

SQL = """
ALTER TABLE listings_products ADD COLUMN recognised_from varchar(255)
    CHECK (recognised_from IS NULL OR (recognised_from <> '' AND authorization_id IS NULL));

-- The first migration's listing rule was an unnamed table CHECK; find it by what it says.
DO $$
DECLARE rule text;
BEGIN
    SELECT conname INTO STRICT rule FROM pg_constraint
     WHERE conrelid = 'listings_products'::regclass AND contype = 'c'
       AND pg_get_constraintdef(oid)
           LIKE '%state)::text <> ''listed''%authorization_id IS NOT NULL%';
    EXECUTE format('ALTER TABLE listings_products DROP CONSTRAINT %I', rule);
END $$;

-- A listed product stands on its registration code and either a local authorization or the
-- recognition of the peer exchange that registered it.
ALTER TABLE listings_products ADD CONSTRAINT listings_products_listing_basis
    CHECK (state <> 'listed'
           OR (registration_code IS NOT NULL
               AND (authorization_id IS NOT NULL OR recognised_from IS NOT NULL)));
CREATE INDEX listings_products_recognised ON listings_products (registration_code)
    WHERE recognised_from IS NOT NULL;
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
