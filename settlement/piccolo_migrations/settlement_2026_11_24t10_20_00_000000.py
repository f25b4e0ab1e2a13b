"""Money that arrives for an order that can no longer take it: an invoice is closed when its
order is cancelled or expires, so every receipt on it is the buyer's credit to refund rather
than a payment; and refunds of that credit are told apart from refunds of an order, so that
refunding an order never hides an over-payment still owed to the buyer."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T10:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "settlement: closed bank invoices, credit refunds"

SQL = """
CREATE TABLE bank_invoice_closures (
    invoice_id uuid PRIMARY KEY REFERENCES bank_invoices (id),
    reason varchar(200) NOT NULL CHECK (length(btrim(reason)) > 0),
    closed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER bank_invoice_closures_append_only BEFORE UPDATE OR DELETE
    ON bank_invoice_closures FOR EACH ROW EXECUTE FUNCTION settlement_refuse_change();

-- Refunds of money the buyer sent beyond what its order takes (over-payment, or anything paid
-- on a closed invoice), as opposed to refunds of the order itself.
ALTER TABLE bank_refunds ADD COLUMN of_credit boolean NOT NULL DEFAULT false;
-- Existing over-payment refunds are marked once; the table is append-only otherwise.
ALTER TABLE bank_refunds DISABLE TRIGGER bank_refunds_append_only;
UPDATE bank_refunds SET of_credit = true WHERE idempotency_key LIKE 'bank-overpayment:%';
ALTER TABLE bank_refunds ENABLE TRIGGER bank_refunds_append_only;
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
