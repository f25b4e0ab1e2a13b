"""Inclusion-proof serving latency at a large tree (default 10⁶ leaves): the use case alone
and over HTTP (the Litestar app through httpx's ASGI transport, no network).

    .venv/bin/python bench/ledger_proofs.py [--leaves 1000000] [--requests 2000] [--profile]

`--profile` prints where the HTTP requests spend their time (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import logging
import pstats
import random
import tempfile
import time
from pathlib import Path

import httpx
from ledger_common import bench_database, bulk_append, percentile

from ledger.note import NoteSigner
from ledger.sealing import seal_all
from ledger.serving import entry_with_proof
from market.app import create_app
from market.database import current_engine, migrate
from market.settings import Settings


async def run(url: str, leaves: int, requests: int, *, profile: bool = False) -> None:
    await migrate()
    started = time.perf_counter()
    await bulk_append(url, 0, leaves)
    loaded = time.perf_counter()
    await seal_all(NoteSigner.generate("bench.example/ledger"), max_leaves=100_000)
    print(f"built a {leaves:,}-leaf log: load {loaded - started:.1f} s, "
          f"seal {time.perf_counter() - loaded:.1f} s")

    await current_engine().start_connection_pool(min_size=2, max_size=10)
    indexes = [random.randrange(leaves) for _ in range(requests)]
    timings = []
    for index in indexes:
        began = time.perf_counter()
        await entry_with_proof(index)
        timings.append(time.perf_counter() - began)
    print(f"proof use case, {requests:,} random leaves: p50 {percentile(timings, 0.5) * 1e3:.2f} "
          f"ms, p99 {percentile(timings, 0.99) * 1e3:.2f} ms (target p99 ≤ 5 ms)")
    await current_engine().close_connection_pool()

    settings = dataclasses.replace(Settings(), database_url=url,
                                   data_dir=Path(tempfile.mkdtemp(prefix="ledger-bench-")))
    app = create_app(settings)
    async with app.lifespan(), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                 base_url="http://bench") as client:
        # The in-process jobs start with a full reconciliation; measure the steady state, after
        # it has recorded its result (the seal job keeps running each second, as in service).
        await asyncio.sleep(1.0)
        finished = "SELECT 1 FROM ledger_reconciliations LIMIT 1"
        # Polls a row another task writes; there is no event in this process to wait on.
        while not await current_engine().run_ddl(finished):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        # httpx logs every request at INFO: the client's logging is not the server's latency.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        profiler = cProfile.Profile() if profile else None
        timings = []
        for index in indexes:
            began = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            response = await client.get(f"/ledger/entries/{index}")
            if profiler is not None:
                profiler.disable()
            timings.append(time.perf_counter() - began)
            assert response.status_code == 200
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    print(f"proof over HTTP (ASGI), {requests:,} requests: p50 "
          f"{percentile(timings, 0.5) * 1e3:.2f} ms, p99 {percentile(timings, 0.99) * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--profile", action="store_true")
    arguments = parser.parse_args()
    with bench_database() as url:
        asyncio.run(run(url, arguments.leaves, arguments.requests, profile=arguments.profile))


if __name__ == "__main__":
    main()
