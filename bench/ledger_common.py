"""Shared set-up of the ledger benchmarks: an embedded PostgreSQL (throw-away, or kept in a
directory across runs), the settings the exchange would serve that database with, and a fast
bulk loader of valid leaves (COPY, bypassing the one-row-at-a-time append path).

Benchmarks seal with the exchange's own signing key (`ledger_signer` of those settings, kept in
their data directory), so the database they leave behind reconciles cleanly when the exchange
serves it: a throw-away key would make every checkpoint's signature fail verification."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from ledger.entries import LedgerRecord
from ledger.hashing import leaf_hash
from ledger.note import NoteSigner
from market.database import export_for_piccolo, start_embedded_server
from market.ledger_wiring import ledger_signer
from market.settings import Settings

# A kept cluster holds one benchmark database under this name.
KEPT_DATABASE = "ledger_bench"


@contextmanager
def bench_database(keep_in: Path | None = None) -> Iterator[str]:
    """The URL of a fresh database on an embedded server; with `keep_in`, the server's cluster
    lives in that directory and its database outlives the run, for the next run to reuse."""
    cluster = keep_in or Path(tempfile.mkdtemp(prefix="ledger-bench-pg-"))
    server = start_embedded_server(cluster / "postgres")
    try:
        base = str(server.get_uri())
        name = KEPT_DATABASE if keep_in else f"ledger_bench_{secrets.token_hex(4)}"
        asyncio.run(_create_database(base, name))
        head, _, query = base.rpartition("?")
        url = f"{head.rsplit('/', 1)[0]}/{name}?{query}" if query else f"{base}/{name}"
        export_for_piccolo(url)
        yield url
    finally:
        server.cleanup()
        if keep_in is None:
            shutil.rmtree(cluster, ignore_errors=True)


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, outside the app's pool, closed on leaving."""
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()


async def _create_database(url: str, name: str) -> None:
    async with connected(url) as connection:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')


def bench_environment(url: str, data_dir: Path) -> dict[str, str]:
    """The environment of an exchange process serving the benchmark database from `data_dir`,
    running its jobs in process (no broker) and logging only warnings."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    environment.update(DATABASE_URL=url, MARKET_DATA_DIR=str(data_dir),
                       MARKET_LOG_LEVEL="WARNING")
    return environment


def bench_settings(url: str, data_dir: Path) -> Settings:
    return Settings.from_env(bench_environment(url, data_dir))


def exchange_signer(url: str, data_dir: Path) -> NoteSigner:
    """The signing key the exchange would seal with on this database (generated into
    `data_dir` on first use, as the embedded default does)."""
    return ledger_signer(bench_settings(url, data_dir))


def make_leaves(first: int, count: int) -> list[tuple[Any, ...]]:
    moment = datetime.now(UTC)
    rows = []
    for index in range(first, first + count):
        record = LedgerRecord(kind="bench.trade", sequence=index, recorded_at=moment,
                              actor="user:bench", payload={"order": index, "amount_minor": 1999,
                                                           "currency": "CNY"})
        entry = record.to_canonical_json()
        rows.append((index, "bench.trade", f"order:{index}", entry, leaf_hash(entry), moment))
    return rows


async def bulk_append(url: str, first: int, count: int, chunk: int = 50_000) -> None:
    async with connected(url) as connection:
        for start in range(first, first + count, chunk):
            rows = make_leaves(start, min(chunk, first + count - start))
            await connection.copy_records_to_table(
                "ledger_leaves", records=rows,
                columns=["leaf_index", "kind", "subject", "entry", "leaf_hash", "recorded_at"])
        await connection.execute(
            "INSERT INTO ledger_head (id, next_index) VALUES (1, $1) "
            "ON CONFLICT (id) DO UPDATE SET next_index = EXCLUDED.next_index", first + count)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
