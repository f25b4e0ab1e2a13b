"""A consortium of exchanges for end-to-end tests of mutual recognition (issue 7 §8).

Each exchange is a real `market serve` process with its own database (on the test run's
PostgreSQL server), its own ledger key and origin, its own chain account and code issuer, and
the demo data; all share one anvil node and one ExchangeLedger contract whose admin admitted
them. Background jobs (sealing, anchoring, witnessing) run in each process as in production
without a broker.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from web3 import Web3

from ledger.note import NoteSigner
from market.embedded.anvil import AnvilNode

STARTUP_DEADLINE_S = 120
# Variables that would send a part of an instance elsewhere than this harness decides.
INHERITED_OUT = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CHAIN_RPC_URL",
                 "CHAIN_PRIVATE_KEY", "LEDGER_CONTRACT_ADDRESS", "STRIPE_API_KEY", "PICCOLO_CONF"}
DEMO_EMAILS = ("staff@exchange.example", "regulator@bureau.example",
               "ops@weather-operator.example", "buyer@logistics.example")
_TOKEN_LINE = re.compile(r"^\S+$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@dataclass
class Exchange:
    label: str
    name: str
    origin: str
    issuer: str
    port: int
    database_url: str
    data_dir: Path
    env: dict[str, str]
    chain_address: str
    process: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self, email: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[email]}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30.0)

    def market(self, *arguments: str) -> str:
        """Run a `market` command against this exchange's database and settings."""
        done = subprocess.run([sys.executable, "-m", "market.cli", *arguments], env=self.env,
                              capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"market {' '.join(arguments)} at {self.label}: "
                               f"{done.stdout}\n{done.stderr}")
        return done.stdout

    def issue_token(self, email: str) -> str:
        printed = self.market("token", "issue", "--email", email, "--days", "1")
        token = printed.strip().splitlines()[-1]
        assert _TOKEN_LINE.match(token), printed
        return token

    def start(self) -> None:
        log = (self.data_dir / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "market.cli", "serve"], env=self.env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exchange {self.label} exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health/live", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"exchange {self.label} did not start: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        path = self.data_dir / "serve.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def sql(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.database_url)
        try:
            return list(await connection.fetch(statement, *args))
        finally:
            await connection.close()


class Consortium:
    """One anvil, one ExchangeLedger, and the exchanges started on them."""

    def __init__(self, anvil: AnvilNode, server_url: str, root: Path) -> None:
        self.anvil = anvil
        self.server_url = server_url
        self.root = root
        self.exchanges: list[Exchange] = []
        # The admin deploys and admits with `market consortium`, as in production.
        self.admin_env = {name: value for name, value in os.environ.items()
                          if name not in INHERITED_OUT}
        self.admin_env.update({"CHAIN_RPC_URL": anvil.rpc_url,
                               "CONSORTIUM_ADMIN_KEY": anvil.dev_private_keys[0]})
        self.contract_address = self.consortium("deploy").strip()
        self.admin_env["LEDGER_CONTRACT_ADDRESS"] = self.contract_address

    def consortium(self, *arguments: str) -> str:
        done = subprocess.run([sys.executable, "-m", "market.cli", "consortium", *arguments],
                              env=self.admin_env, capture_output=True, text=True, timeout=120,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"market consortium {' '.join(arguments)}: {done.stderr}")
        return done.stdout

    def admit(self, address: str, origin: str) -> None:
        self.consortium("admit", address, origin)

    def create(self, label: str, *, account: int, admitted: bool = True) -> Exchange:
        """Prepare exchange `label` (database migrated, demo seeded, tokens issued), unstarted."""
        origin = f"exchange-{label.lower()}.test/ledger"
        key = self.anvil.dev_private_keys[account]
        address = Web3().eth.account.from_key(key).address
        if admitted:
            self.admit(address, origin)
        database = f"{urlsplit(self.server_url).path.lstrip('/')}_{label.lower()}"
        asyncio.run(_admin(self.server_url, f'CREATE DATABASE "{database}"'))
        data_dir = self.root / label
        data_dir.mkdir(parents=True)
        port = free_port()
        env = {name: value for name, value in os.environ.items() if name not in INHERITED_OUT}
        env.update({
            "DATABASE_URL": _with_database(self.server_url, database),
            "MARKET_DATA_DIR": str(data_dir), "MARKET_HOST": "127.0.0.1",
            "MARKET_PORT": str(port), "MARKET_EXCHANGE_NAME": f"{label}数据交易所",
            "MARKET_CODE_ISSUER": f"{label}EX", "MARKET_LEDGER_ORIGIN": origin,
            "MARKET_LEDGER_SIGNING_KEY": NoteSigner.generate(origin).to_skey(),
            "CHAIN_RPC_URL": self.anvil.rpc_url, "CHAIN_PRIVATE_KEY": key,
            "LEDGER_CONTRACT_ADDRESS": self.contract_address,
            "MARKET_LEDGER_ANCHOR_INTERVAL_S": "1", "MARKET_LOG_LEVEL": "WARNING",
        })
        exchange = Exchange(label=label, name=f"{label}数据交易所", origin=origin,
                            issuer=f"{label}EX", port=port, database_url=env["DATABASE_URL"],
                            data_dir=data_dir, env=env, chain_address=address)
        exchange.market("demo")
        exchange.tokens = {email: exchange.issue_token(email) for email in DEMO_EMAILS}
        self.exchanges.append(exchange)
        return exchange

    def close(self) -> None:
        for exchange in self.exchanges:
            exchange.stop()
            database = urlsplit(exchange.database_url).path.lstrip("/")
            asyncio.run(_admin(self.server_url, f'DROP DATABASE IF EXISTS "{database}" '
                                                "WITH (FORCE)"))


def consortium_of(anvil: AnvilNode, server_url: str, root: Path) -> Iterator[Consortium]:
    consortium = Consortium(anvil, server_url, root)
    try:
        yield consortium
    finally:
        consortium.close()


async def eventually(check: Any, *, timeout_s: float = 60.0, every_s: float = 0.5) -> Any:
    """Poll the coroutine function `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {check.__name__}")
        await asyncio.sleep(every_s)
