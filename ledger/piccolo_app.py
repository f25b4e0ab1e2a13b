"""The ledger package's Piccolo app: its tables and its own migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from ledger.schema import (
    LedgerAlert,
    LedgerAnchor,
    LedgerChainTransaction,
    LedgerCheckpoint,
    LedgerCodeRegistration,
    LedgerReconciliation,
    LedgerTile,
)
from ledger.tables import LedgerHead, LedgerLeaf

APP_CONFIG = AppConfig(
    app_name="ledger",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[LedgerHead, LedgerLeaf, LedgerTile, LedgerCheckpoint, LedgerChainTransaction,
                   LedgerAnchor, LedgerCodeRegistration, LedgerReconciliation, LedgerAlert],
    migration_dependencies=[],
    commands=[],
)
