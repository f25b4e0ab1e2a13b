"""Bank payouts to operators: each payout's reference (quoted on the bank transfer), amount and
period, the staff who instructed it and, once the bank sent it, the bank line. A payout is
instructed once per idempotency key and marked sent once; it is never deleted."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T10:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "settlement: operator bank payouts"

SQL = """
CREATE SEQUENCE operator_payout_number;

CREATE TABLE operator_payouts (
    id uuid PRIMARY KEY,
    reference varchar(40) NOT NULL UNIQUE,
    operator_org_id varchar(128) NOT NULL CHECK (length(operator_org_id) > 0),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    period varchar(7) CHECK (period ~ '^[0-9]{4}(-(0[1-9]|1[0-2]))?$'),
    idempotency_key varchar(255) NOT NULL UNIQUE CHECK (length(idempotency_key) > 0),
    request_fingerprint char(64) NOT NULL,
    instructed_by varchar(200) NOT NULL,
    instructed_at timestamptz NOT NULL DEFAULT now(),
    bank_transaction_ref varchar(128) UNIQUE,
    sent_on date,
    sent_by varchar(200),
    sent_at timestamptz,
    CHECK ((bank_transaction_ref IS NULL) = (sent_on IS NULL)
       AND (sent_on IS NULL) = (sent_by IS NULL) AND (sent_by IS NULL) = (sent_at IS NULL))
);
CREATE INDEX operator_payouts_operator ON operator_payouts (operator_org_id, instructed_at);

CREATE FUNCTION operator_payouts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.sent_at IS NOT NULL
       OR (NEW.id, NEW.reference, NEW.operator_org_id, NEW.currency, NEW.amount_minor,
           NEW.period, NEW.idempotency_key, NEW.request_fingerprint, NEW.instructed_by,
           NEW.instructed_at)
          IS DISTINCT FROM (OLD.id, OLD.reference, OLD.operator_org_id, OLD.currency,
           OLD.amount_minor, OLD.period, OLD.idempotency_key, OLD.request_fingerprint,
           OLD.instructed_by, OLD.instructed_at) THEN
        RAISE EXCEPTION 'a payout is only ever marked sent, once: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER operator_payouts_guard BEFORE UPDATE OR DELETE ON operator_payouts
    FOR EACH ROW EXECUTE FUNCTION operator_payouts_guard();
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="settlement", description=DESCRIPTION)

    async def create_schema() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the schema and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager
