"""The market's own Piccolo app: accounts and the exchange's operational tables."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from market.accounts.tables import ApiToken, Organisation, User
from market.peering.tables import PEERING_TABLES
from market.trading.order_tables import ORDER_TABLES
from market.trading.orders import ConnectedAccountRow
from market.trading.tables import TRADING_TABLES

APP_CONFIG = AppConfig(
    app_name="market",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[Organisation, User, ApiToken, *TRADING_TABLES, *ORDER_TABLES,
                   ConnectedAccountRow, *PEERING_TABLES],
    # The order placement's function (2026-11-25T11:20) calls settlement's and the ledger's.
    migration_dependencies=["settlement.piccolo_app", "ledger.piccolo_app"],
    commands=[],
)
