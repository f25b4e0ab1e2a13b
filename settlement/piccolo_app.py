"""The settlement package's Piccolo app: its tables and its own migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from settlement.tables import SETTLEMENT_TABLES

APP_CONFIG = AppConfig(
    app_name="settlement",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=SETTLEMENT_TABLES,
    migration_dependencies=[],
    commands=[],
)
