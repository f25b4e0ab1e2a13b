"""Witnessing: the latest verified checkpoint of each peer log, cosignatures received for this
log's checkpoints, and evidence of peers' inconsistent checkpoints."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ledger witnessing: witnessed logs, cosignatures, witness alerts"

SQL = """
-- Per witnessed log (by origin), the latest checkpoint this exchange verified: the state a
-- tlog-witness keeps. It only moves forward; a different root at the same size is never
-- written over (that is evidence, kept in ledger_witness_alerts).
CREATE TABLE ledger_witnessed_logs (
    origin text PRIMARY KEY CHECK (origin <> ''),
    tree_size bigint NOT NULL CHECK (tree_size >= 0),
    root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
    note text NOT NULL,
    verified_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION ledger_witnessed_log_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.origin <> OLD.origin OR NEW.tree_size < OLD.tree_size
       OR (NEW.tree_size = OLD.tree_size AND NEW.root_hash <> OLD.root_hash) THEN
        RAISE EXCEPTION 'witnessed log % may only grow: UPDATE refused', OLD.origin
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_witnessed_logs_only_grow BEFORE UPDATE ON ledger_witnessed_logs
    FOR EACH ROW EXECUTE FUNCTION ledger_witnessed_log_only_grows();
CREATE TRIGGER ledger_witnessed_logs_no_delete BEFORE DELETE ON ledger_witnessed_logs
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Cosignatures peers' witnesses returned for this log's own checkpoints (tlog-cosignature);
-- served as extra signature lines on the checkpoint.
CREATE TABLE ledger_cosignatures (
    id bigserial PRIMARY KEY,
    tree_size bigint NOT NULL REFERENCES ledger_checkpoints (tree_size),
    cosigner_name text NOT NULL,
    key_id bytea NOT NULL CHECK (octet_length(key_id) = 4),
    cosigned_at bigint NOT NULL CHECK (cosigned_at >= 0),
    signature_line text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tree_size, cosigner_name, key_id)
);
CREATE INDEX ledger_cosignatures_by_cosigner ON ledger_cosignatures (cosigner_name, key_id,
                                                                     tree_size);
CREATE TRIGGER ledger_cosignatures_append_only BEFORE UPDATE OR DELETE ON ledger_cosignatures
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- A peer log that could not prove a checkpoint extends the one witnessed before: both signed
-- notes and the failed proof, for staff. Append-only: evidence is never edited away.
CREATE TABLE ledger_witness_alerts (
    id bigserial PRIMARY KEY,
    raised_at timestamptz NOT NULL DEFAULT now(),
    origin text NOT NULL,
    source varchar(16) NOT NULL CHECK (source IN ('submission', 'poll')),
    summary text NOT NULL,
    evidence jsonb NOT NULL
);
CREATE INDEX ledger_witness_alerts_raised ON ledger_witness_alerts (raised_at DESC);
CREATE TRIGGER ledger_witness_alerts_append_only BEFORE UPDATE OR DELETE
    ON ledger_witness_alerts FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="ledger", description=DESCRIPTION)

    async def create_schema() -> None:
        # On the migration transaction's connection, so the schema and the migration record
        # commit together (as in the earlier ledger migrations).
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
