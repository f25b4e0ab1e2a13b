"""A peer keeps who last changed its state (suspended or reactivated it), so that reconciliation
can check the newest of its state-change leaves; a peer whose state never changed has none.
Peers changed before this column take the actor of their newest state-change leaf."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "peering: who last changed a peer's state"

SQL = """
ALTER TABLE peering_peers ADD COLUMN state_changed_by varchar(200);
-- The ledger's tables come with the ledger app's migrations, which a new database runs after
-- this one (and a new database has no peers to fill in).
DO $$
BEGIN
    IF to_regclass('ledger_leaves') IS NOT NULL THEN
        UPDATE peering_peers peer SET state_changed_by = (
            SELECT convert_from(leaf.entry, 'UTF8')::jsonb ->> 'actor' FROM ledger_leaves leaf
            WHERE leaf.kind = 'peering.peer_state_changed' AND leaf.subject = peer.origin
            ORDER BY leaf.leaf_index DESC LIMIT 1);
    END IF;
END
$$;
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
