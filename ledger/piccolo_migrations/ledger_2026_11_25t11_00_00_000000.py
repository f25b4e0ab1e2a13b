"""The leaf append as a database function, so that a use case can end its own statement with it
instead of spending one more round trip on the ledger (``market``'s order placement does)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ledger: ledger_append, one leaf appended in one call"

SQL = """
-- One leaf to append. RFC 8785 sorts an object's members, so "sequence" is a canonical entry's
-- last one: the entry is head || the index in decimal || tail, and the index is only known
-- under the head's lock. leaf_prefix is RFC 6962's 0x00, passed by ledger.hashing so that the
-- constant has one home.
CREATE TYPE ledger_entry AS (
    kind varchar(64),
    subject varchar(200),
    head bytea,
    tail bytea,
    leaf_prefix bytea,
    recorded_at timestamptz
);

-- Takes the next index (the head's row lock, held until the caller's transaction ends) and
-- writes the leaf with its RFC 6962 hash. An upsert, so that an empty log needs no seeded row;
-- either branch takes the row lock.
CREATE FUNCTION ledger_append(appended ledger_entry, OUT leaf_index bigint, OUT leaf_hash bytea)
LANGUAGE plpgsql AS $$
DECLARE
    entry bytea;
BEGIN
    INSERT INTO ledger_head AS head (id, next_index) VALUES (1, 1)
        ON CONFLICT (id) DO UPDATE SET next_index = head.next_index + 1
        RETURNING head.next_index - 1 INTO leaf_index;
    entry := appended.head || convert_to(leaf_index::text, 'UTF8') || appended.tail;
    leaf_hash := sha256(appended.leaf_prefix || entry);
    INSERT INTO ledger_leaves (leaf_index, kind, subject, entry, leaf_hash, recorded_at)
        VALUES (leaf_index, appended.kind, appended.subject, entry, leaf_hash,
                appended.recorded_at);
END
$$;
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="ledger", description=DESCRIPTION)

    async def create_function() -> None:
        # On the migration transaction's connection, so the function and the migration record
        # commit together (as in the earlier ledger migrations).
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_function)
    return manager
