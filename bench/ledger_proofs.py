"""Inclusion-proof serving latency at a large tree (default 10⁶ leaves): the use case alone and
over HTTP, side by side, with cost figures that a shared machine's noise moves less.

    .venv/bin/python bench/ledger_proofs.py [--leaves 1000000] [--requests 2000] [--reuse DIR]
                                            [--profile]

The log is bulk-loaded and sealed with the exchange's own signing key, kept in the data
directory the server then runs with. Building 10⁶ leaves takes minutes: with `--reuse DIR` the
database cluster and the data directory are kept in DIR, and a later run with the same
`--leaves` reuses them.

Then, in alternating rounds over the same random leaf indexes:
- the use case `ledger.serving.entry_with_proof` in this process with a proof cache as the app's,
  in a connection pool opened as the app opens its own, counting SQL round trips per proof
  (every statement a pooled connection runs, any reset on release included) and this
  process's CPU time per proof;
- `GET /ledger/entries/<index>` over HTTP/1.1 on 127.0.0.1 to the exchange served by uvicorn in
  a subprocess, as in production (`market.asgi`), one request at a time on one keep-alive
  connection, from two clients: a bare one (a socket, so the figure is the server's) and httpx
  (a typical client, whose own CPU time on this 2-core machine shows in its latency); with the
  server process's and this process's CPU time per request.

The server runs its jobs in process, so it first reconciles the whole log: the measurement
waits until that reconciliation is recorded, prints its discrepancy count (zero, since the log
was sealed with the exchange's key), and then runs while the seal job keeps running each second.
Both paths get the same untimed warm-up first (pools, prepared statements, caches).

`--profile` prints where the use case spends its time (cProfile); the server's pid is printed,
for a sampling profiler (py-spy) to attach to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_common import (
    bench_database,
    bench_environment,
    bulk_append,
    connected,
    exchange_signer,
    percentile,
)

from ledger.proof_cache import ProofCache
from ledger.sealing import seal_all
from ledger.serving import entry_with_proof
from market.database import close_pool, current_engine, migrate, open_pool
from market.settings import Settings

ROUNDS = 4
POOL_SIZE = 4
WARM_UP_REQUESTS = 200
TARGET_P99_MS = 5.0


async def prepare_log(url: str, data_dir: Path, leaves: int) -> None:
    """A log of exactly `leaves` sealed leaves: built, or found from an earlier run."""
    await migrate()
    async with connected(url) as connection:
        appended = await connection.fetchval("SELECT next_index FROM ledger_head WHERE id = 1")
        sealed = await connection.fetchval("SELECT max(tree_size) FROM ledger_checkpoints")
    if appended == sealed == leaves:
        print(f"reusing the sealed {leaves:,}-leaf log")
        return
    if appended:
        raise SystemExit(f"the kept database holds {appended:,} leaves ({sealed or 0:,} sealed), "
                         f"not {leaves:,}: give another --reuse directory")
    started = time.perf_counter()
    await bulk_append(url, 0, leaves)
    loaded = time.perf_counter()
    await seal_all(exchange_signer(url, data_dir), max_leaves=100_000)
    print(f"built a {leaves:,}-leaf log: load {loaded - started:.1f} s, "
          f"seal {time.perf_counter() - loaded:.1f} s")


class StatementCounter:
    """Counts the statements the connections of the app's pool run (asyncpg query loggers,
    which outlive a connection's release to the pool)."""

    def __init__(self) -> None:
        self.count = 0

    async def watch_pool(self, pool: asyncpg.Pool, size: int) -> None:
        async with contextlib.AsyncExitStack() as held:
            for _ in range(size):
                connection = await held.enter_async_context(pool.acquire())
                connection.add_query_logger(self._count)

    def _count(self, _: object) -> None:
        self.count += 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of process `pid` so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def served_exchange(environment: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "market.asgi:app_from_environment",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        while server.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health/live", timeout=1).status_code < 500:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit(f"the server exited with status {server.returncode}")
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=60)


async def wait_for_start_up_reconciliation(url: str, after_id: int,
                                           server: subprocess.Popen[bytes]) -> None:
    async with connected(url) as connection:
        began = time.perf_counter()
        query = ("SELECT discrepancy_count, discrepancies::text AS detail "
                 "FROM ledger_reconciliations WHERE id > $1 ORDER BY id LIMIT 1")
        # Polls a row the server process writes; there is nothing in this process to wait on.
        while (row := await connection.fetchrow(query, after_id)) is None:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with status {server.returncode}")
            await asyncio.sleep(0.5)
    print(f"the server's start-up reconciliation took ≈ {time.perf_counter() - began:.0f} s: "
          f"{row['discrepancy_count']} discrepancies {row['detail'][:300]}")


async def last_reconciliation_id(url: str) -> int:
    async with connected(url) as connection:
        return int(await connection.fetchval(
            "SELECT coalesce(max(id), 0) FROM ledger_reconciliations"))


class PlainHttpClient:
    """A bare HTTP/1.1 keep-alive client on one socket, one request at a time: what the server
    takes, with next to none of a client library's own time around it. `connect` before each
    batch: uvicorn closes a connection idle for 5 s."""

    def __init__(self, base: str) -> None:
        host, _, port = base.removeprefix("http://").partition(":")
        self._address = host, int(port)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        await self.close()
        self._reader, self._writer = await asyncio.open_connection(*self._address)

    async def get(self, path: str) -> tuple[int, bytes]:
        if self._reader is None or self._writer is None:
            raise RuntimeError("not connected")
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines if line)
        lengths = [value for name, value in headers.items() if name.lower() == "content-length"]
        body = await self._reader.readexactly(int(lengths[0]))
        return int(status_line.split()[1]), body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
            self._reader = self._writer = None


async def timed(requests: list[int], call: Callable[[int], Awaitable[Any]],
                profiler: cProfile.Profile | None = None) -> list[float]:
    timings = []
    for index in requests:
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await call(index)
        if profiler is not None:
            profiler.disable()
        timings.append(time.perf_counter() - began)
    return timings


def summary(name: str, timings: list[float], cost: str) -> str:
    figures = ", ".join(f"p{round(fraction * 100)} {percentile(timings, fraction) * 1e3:.2f} ms"
                        for fraction in (0.5, 0.95, 0.99))
    return f"{name:<34} {len(timings):,} proofs: {figures}; {cost}"


async def measure(base: str, server_pid: int, cache: ProofCache, leaves: int, requests: int, *,
                  profile: bool) -> None:
    engine = current_engine()
    await open_pool(engine, max_size=POOL_SIZE)  # as the app opens it
    counter = StatementCounter()
    await counter.watch_pool(engine.pool, POOL_SIZE)
    indexes = [random.randrange(leaves) for _ in range(requests)]
    warm_up = [random.randrange(leaves) for _ in range(WARM_UP_REQUESTS)]
    profiler = cProfile.Profile() if profile else None

    async def use_case(index: int) -> None:
        await entry_with_proof(index, cache)
    use_case_timings: list[float] = []
    use_case_cpu_s = 0.0
    server_cpu_s = {"httpx": 0.0, "plain": 0.0}
    client_cpu_s = {"httpx": 0.0, "plain": 0.0}
    http_timings: dict[str, list[float]] = {"httpx": [], "plain": []}
    statements = 0
    async with httpx.AsyncClient(base_url=base) as client:

        plain = PlainHttpClient(base)

        async def over_httpx(index: int) -> None:
            response = await client.get(f"/ledger/entries/{index}")
            if response.status_code != 200:
                raise RuntimeError(f"leaf {index}: HTTP {response.status_code} {response.text}")

        async def over_plain_http(index: int) -> None:
            status, body = await plain.get(f"/ledger/entries/{index}")
            if status != 200:
                raise RuntimeError(f"leaf {index}: HTTP {status} {body!r}")

        clients = {"httpx": over_httpx, "plain": over_plain_http}
        await timed(warm_up, use_case)
        await plain.connect()
        for over_http in clients.values():
            await timed(warm_up, over_http)
        for round_number in range(ROUNDS):
            batch = indexes[round_number::ROUNDS]
            statements_before, cpu_before = counter.count, time.process_time()
            use_case_timings += await timed(batch, use_case, profiler)
            use_case_cpu_s += time.process_time() - cpu_before
            statements += counter.count - statements_before
            await plain.connect()
            for name, over_http in clients.items():
                cpu_before, client_cpu_before = process_cpu_s(server_pid), time.process_time()
                http_timings[name] += await timed(batch, over_http)
                server_cpu_s[name] += process_cpu_s(server_pid) - cpu_before
                client_cpu_s[name] += time.process_time() - client_cpu_before
        await plain.close()
    await close_pool(engine)
    print(summary("use case (in process):", use_case_timings,
                  f"{statements / requests:.2f} SQL round trips and "
                  f"{use_case_cpu_s / requests * 1e3:.2f} ms CPU per proof"))
    lookups = cache.hits + cache.misses
    print(f"proof cache: {len(cache.kept_tiles):,} full-tile pyramids kept (at most "
          f"{cache.max_pyramids:,}), {len(cache.kept_edge_nodes):,} right-edge hashes; "
          f"{cache.hits / max(lookups, 1):.0%} of {lookups:,} proof hashes found there")
    for name, label in (("plain", "HTTP, bare client:"), ("httpx", "HTTP, httpx client:")):
        print(summary(label, http_timings[name],
                      f"{server_cpu_s[name] / requests * 1e3:.2f} ms server CPU (seal job "
                      f"included), {client_cpu_s[name] / requests * 1e3:.2f} ms client CPU "
                      "per request"))
    print(f"target: p99 ≤ {TARGET_P99_MS:.0f} ms over HTTP at {leaves:,} leaves")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--reuse", type=Path, metavar="DIR",
                        help="keep the database cluster and data directory in DIR and reuse "
                             "their log on the next run with the same --leaves")
    parser.add_argument("--proof-cache-mb", type=int, metavar="MB",
                        help="MARKET_LEDGER_PROOF_CACHE_MB for the server and the use case "
                             "(default: the setting's default)")
    parser.add_argument("--profile", action="store_true")
    arguments = parser.parse_args()
    with contextlib.ExitStack() as stack:
        directory = arguments.reuse or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="ledger-proofs-bench-")))
        data_dir = directory / "data"
        url = stack.enter_context(bench_database(keep_in=directory))
        asyncio.run(prepare_log(url, data_dir, arguments.leaves))
        reconciled_before = asyncio.run(last_reconciliation_id(url))
        environment = bench_environment(url, data_dir)
        if arguments.proof_cache_mb is not None:
            environment["MARKET_LEDGER_PROOF_CACHE_MB"] = str(arguments.proof_cache_mb)
        # The use case keeps a cache as the app does, within the same setting.
        cache = ProofCache.within(Settings.from_env(environment).ledger_proof_cache_mb)
        base, server = stack.enter_context(served_exchange(environment))
        print(f"serving at {base}, server pid {server.pid}")
        asyncio.run(wait_for_start_up_reconciliation(url, reconciled_before, server))
        asyncio.run(measure(base, server.pid, cache, arguments.leaves, arguments.requests,
                            profile=arguments.profile))


if __name__ == "__main__":
    main()
