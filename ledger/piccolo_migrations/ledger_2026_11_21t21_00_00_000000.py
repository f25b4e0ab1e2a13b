"""The ledger's leaves: append-only in the database itself, numbered without gaps."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ledger leaves"

SQL = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TABLE ledger_head (
    id bigint PRIMARY KEY CHECK (id = 1),
    next_index bigint NOT NULL CHECK (next_index >= 0)
);

CREATE TABLE ledger_leaves (
    leaf_index bigint PRIMARY KEY CHECK (leaf_index >= 0),
    kind varchar(64) NOT NULL,
    -- What the record is about (e.g. "registration:<id>"), so reconciliation can find it.
    subject varchar(200) NOT NULL,
    entry bytea NOT NULL CHECK (octet_length(entry) BETWEEN 2 AND 65535),
    leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32),
    recorded_at timestamptz NOT NULL
);
CREATE INDEX ledger_leaves_subject ON ledger_leaves (subject);

CREATE TRIGGER ledger_leaves_append_only BEFORE UPDATE OR DELETE ON ledger_leaves
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="ledger", description=DESCRIPTION)

    async def create_schema() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the schema and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
