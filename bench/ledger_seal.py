"""Sealing throughput (leaves/s) and checkpoint latency (append commit → covered by a signed
checkpoint), as the in-process job runs it (a seal every 0.5 s).

    .venv/bin/python bench/ledger_seal.py [--leaves 200000] [--appends 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from ledger_common import bench_database, bulk_append, exchange_signer, percentile

from ledger.log import append_record
from ledger.note import NoteSigner
from ledger.sealing import seal_all
from market.database import current_engine, migrate


async def seal_throughput(url: str, leaves: int, signer: NoteSigner) -> None:

    await migrate()
    await bulk_append(url, 0, leaves)
    await current_engine().start_connection_pool(min_size=2, max_size=10)
    started = time.perf_counter()
    result = await seal_all(signer, max_leaves=50_000)
    elapsed = time.perf_counter() - started
    assert result is not None
    print(f"sealed {result.tree_size:,} leaves in {elapsed:.2f} s: "
          f"{result.tree_size / elapsed:,.0f} leaves/s (target ≥ 10,000)")


async def checkpoint_latency(appends: int, per_transaction: int, rate_per_s: float,
                             signer: NoteSigner) -> None:

    engine = current_engine()
    committed_at: dict[int, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def appender() -> None:
        interval = per_transaction / rate_per_s
        for _ in range(appends // per_transaction):
            async with engine.transaction():
                indexes = [
                    (await append_record("bench.trade", actor="user:bench", subject="order:x",
                                         payload={"amount_minor": 1})).leaf_index
                    for _ in range(per_transaction)]
            now = time.perf_counter()
            committed_at.update(dict.fromkeys(indexes, now))
            await asyncio.sleep(interval)
        done.set()

    async def sealer() -> None:
        sealed = None
        while not (done.is_set() and sealed is not None and not committed_at):
            result = await seal_all(signer)
            now = time.perf_counter()
            if result is not None:
                sealed = result.tree_size
                covered = [index for index in committed_at if index < result.tree_size]
                latencies.extend(now - committed_at.pop(index) for index in covered)
            await asyncio.sleep(0.5)  # the ledger.seal job's interval

    await asyncio.gather(appender(), sealer())
    print(f"checkpoint latency over {len(latencies):,} appends at {rate_per_s:,.0f}/s "
          f"(seal every 0.5 s): p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms (target p99 ≤ 1000 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaves", type=int, default=200_000)
    parser.add_argument("--appends", type=int, default=3_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="appends per second")
    arguments = parser.parse_args()
    with bench_database() as url, tempfile.TemporaryDirectory() as data_dir:
        signer = exchange_signer(url, Path(data_dir))

        async def run() -> None:
            await seal_throughput(url, arguments.leaves, signer)
            await checkpoint_latency(arguments.appends, 10, arguments.rate, signer)
        asyncio.run(run())


if __name__ == "__main__":
    main()
