"""The listings package's Piccolo app: its tables and its own migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from listings.tables import LISTINGS_TABLES

APP_CONFIG = AppConfig(
    app_name="listings",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=LISTINGS_TABLES,
    migration_dependencies=[],
    commands=[],
)
