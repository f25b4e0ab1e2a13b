"""Shared set-up of the ledger benchmarks: a throw-away embedded PostgreSQL, migrated, and a
fast bulk loader of valid leaves (COPY, bypassing the one-row-at-a-time append path)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from ledger.entries import LedgerRecord
from ledger.hashing import leaf_hash
from market.database import export_for_piccolo, start_embedded_server


@contextmanager
def bench_database() -> Iterator[str]:
    cluster = Path(tempfile.mkdtemp(prefix="ledger-bench-pg-"))
    server = start_embedded_server(cluster / "postgres")
    try:
        base = str(server.get_uri())
        name = f"ledger_bench_{secrets.token_hex(4)}"
        asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
        head, _, query = base.rpartition("?")
        url = f"{head.rsplit('/', 1)[0]}/{name}?{query}" if query else f"{base}/{name}"
        export_for_piccolo(url)
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(cluster, ignore_errors=True)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


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
    connection = await asyncpg.connect(url)
    try:
        for start in range(first, first + count, chunk):
            rows = make_leaves(start, min(chunk, first + count - start))
            await connection.copy_records_to_table(
                "ledger_leaves", records=rows,
                columns=["leaf_index", "kind", "subject", "entry", "leaf_hash", "recorded_at"])
        await connection.execute(
            "INSERT INTO ledger_head (id, next_index) VALUES (1, $1) "
            "ON CONFLICT (id) DO UPDATE SET next_index = EXCLUDED.next_index", first + count)
    finally:
        await connection.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
