"""Piccolo's configuration module: the engine and the registry of the exchange's apps.

Read by Piccolo itself (PICCOLO_CONF); the `market` command exports DATABASE_URL before any
table is touched, which is why the URL is read here rather than passed in.
"""

import os

from piccolo.conf.apps import AppRegistry

from market.database import create_engine

_database_url = os.environ.get("DATABASE_URL")
if not _database_url:
    raise RuntimeError(
        "DATABASE_URL is not set: start the exchange with the `market` command, which provides "
        "the embedded PostgreSQL server, or set DATABASE_URL to a PostgreSQL database"
    )

DB = create_engine(_database_url)

APP_REGISTRY = AppRegistry(
    apps=[
        "market.piccolo_app",
        "listings.piccolo_app",
        "settlement.piccolo_app",
        "ledger.piccolo_app",
    ]
)
