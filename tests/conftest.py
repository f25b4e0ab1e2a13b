"""Shared fixtures: a real PostgreSQL (embedded, or DATABASE_URL's server) for the whole run,
migrated once, with every test that touches it leaving it empty again."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from market.database import export_for_piccolo, migrate, start_embedded_server

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this run, dropped afterwards."""
    external = os.environ.get("DATABASE_URL")
    server = None
    cluster = Path(tempfile.mkdtemp(prefix="market-test-pg-"))
    if external:
        server_url = external
    else:
        server = start_embedded_server(cluster / "postgres")
        server_url = str(server.get_uri())
    name = f"market_test_{secrets.token_hex(4)}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = _with_database(server_url, name)
    export_for_piccolo(url)
    try:
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()
        shutil.rmtree(cluster, ignore_errors=True)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> str:
    await migrate()
    return database_url


@pytest.fixture
async def db(migrated_database: str) -> AsyncIterator[str]:
    """The migrated test database; emptied after the test, so each test starts from nothing."""
    yield migrated_database
    connection = await asyncpg.connect(migrated_database)
    try:
        tables = await connection.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'migration'")
        if tables:
            names = ", ".join(row["name"] for row in tables)
            await connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()
