"""The buyer clearance register (分类分级): staff clear a buyer organisation for a grade of data
(important data; general data needs no clearance and core data is never traded) on evidence,
for a term, revocably. Grants and revocations are ledgered; a row is never deleted, and once
revoked it stays revoked."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T10:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "trading: buyer clearance register"

SQL = """
CREATE TABLE trading_buyer_clearances (
    id uuid PRIMARY KEY,
    buyer_org_id uuid NOT NULL REFERENCES organisations (id),
    grade varchar(16) NOT NULL CHECK (grade = 'important'),
    valid_from date NOT NULL,
    valid_to date NOT NULL CHECK (valid_to >= valid_from),
    evidence text NOT NULL CHECK (length(btrim(evidence)) > 0),
    granted_by varchar(200) NOT NULL,
    granted_at timestamptz NOT NULL,
    leaf_index bigint NOT NULL,
    revoked_at timestamptz,
    revoked_by varchar(200),
    revocation_reason text,
    revocation_leaf_index bigint,
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)
       AND (revoked_at IS NULL) = (revocation_reason IS NULL)
       AND (revoked_at IS NULL) = (revocation_leaf_index IS NULL))
);
CREATE INDEX trading_buyer_clearances_buyer ON trading_buyer_clearances (buyer_org_id);

CREATE FUNCTION trading_buyer_clearances_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.revoked_at IS NOT NULL
       OR (NEW.id, NEW.buyer_org_id, NEW.grade, NEW.valid_from, NEW.valid_to, NEW.evidence,
           NEW.granted_by, NEW.granted_at, NEW.leaf_index)
          IS DISTINCT FROM (OLD.id, OLD.buyer_org_id, OLD.grade, OLD.valid_from, OLD.valid_to,
           OLD.evidence, OLD.granted_by, OLD.granted_at, OLD.leaf_index) THEN
        RAISE EXCEPTION 'a buyer clearance is only ever revoked, once: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER trading_buyer_clearances_guard BEFORE UPDATE OR DELETE
    ON trading_buyer_clearances FOR EACH ROW EXECUTE FUNCTION trading_buyer_clearances_guard();
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="market", description=DESCRIPTION)

    async def create_schema() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the schema and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
