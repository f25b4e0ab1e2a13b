"""Journal transaction kinds for Stripe destination charges: the transfer of the operator's share
to its connected account when the charge succeeds, and the reversal of that transfer when the
order is refunded (settlement.journal, "Stripe destination charges")."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "settlement: Stripe Connect transfer journal kinds"

SQL = """
ALTER TABLE journal_transactions DROP CONSTRAINT journal_transactions_kind_check;
ALTER TABLE journal_transactions ADD CONSTRAINT journal_transactions_kind_check CHECK (kind IN (
    'order_payment_received', 'order_settled', 'refund', 'settled_refund', 'payout',
    'connect_transfer', 'connect_transfer_reversal', 'reversal'));
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="settlement", description=DESCRIPTION)

    async def widen_kinds() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the constraint and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(widen_kinds)
    return manager
