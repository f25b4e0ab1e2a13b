"""`market ledger verify` against a running exchange, and `market ledger reconcile`, as an
operator would run them: separate processes on the test database, judged by exit code and
output. Both pass on an honest log and fail, saying what is wrong, on a tampered one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from ledger.log import append_record
from ledger.note import NoteSigner
from ledger.sealing import seal_all
from market.database import current_engine
from market.ledger_wiring import ledger_signer
from market.settings import Settings
from settlement import journal_store
from settlement.journal import order_payment_received
from settlement.money import Money

STARTUP_DEADLINE_S = 120
# Variables that would point the processes at other services than the test database.
OTHER_SERVICES = {"REDIS_URL", "CELERY_BROKER_URL", "CHAIN_RPC_URL", "CHAIN_PRIVATE_KEY",
                  "LEDGER_CONTRACT_ADDRESS", "LEDGER_SIGNING_KEY", "LEDGER_ORIGIN",
                  "STRIPE_API_KEY", "MARKET_DATA_DIR", "MARKET_PORT", "MARKET_HOST"}


@dataclass(frozen=True)
class Exchange:
    environment: dict[str, str]
    base_url: str

    async def seal(self) -> None:
        """Seal in this process with the exchange's own key (the data directory's), as its
        seal job would: faster than one more `market ledger seal` process."""
        await seal_all(ledger_signer(Settings.from_env(self.environment)), wait=True)

    def market(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "market.cli", *arguments],
                              env=self.environment, capture_output=True, text=True,
                              timeout=120, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def exchange(migrated_database: str, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[Exchange]:
    """`market serve` on the test database (its jobs in-process, no chain), with a data
    directory of its own that holds the signing key every `market ledger` call shares."""
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if key not in OTHER_SERVICES}
    environment |= {"DATABASE_URL": migrated_database, "MARKET_PORT": str(port),
                    "MARKET_DATA_DIR": str(tmp_path_factory.mktemp("exchange")),
                    "LOG_LEVEL": "WARNING"}
    log = Path(environment["MARKET_DATA_DIR"]) / "serve.log"
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "market.cli", "serve"],
                                   env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"market serve exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{base_url}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"market serve did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield Exchange(environment, base_url)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def log_records(count: int, *, start: int = 0) -> None:
    async with current_engine().transaction():
        for number in range(start, start + count):
            await append_record("test.event", actor="system", subject=f"thing:{number}",
                                payload={"n": number})


def rewrite_entry(index: int) -> str:
    """SQL that changes the payload of `thing:<index>` in place, leaving its leaf hash."""
    before, after = f"'\"n\":{index}}}'", f"'\"n\":{index + 1}}}'"
    text = f"replace(convert_from(entry, 'UTF8'), {before}, {after})"
    return f"UPDATE ledger_leaves SET entry = convert_to({text}, 'UTF8') WHERE leaf_index = {index}"  # noqa: S608


async def tamper(database_url: str, *statements: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("SET session_replication_role = replica")
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def test_verify_passes_on_an_honest_log_and_fails_on_a_tampered_one(
    db: str, exchange: Exchange
) -> None:
    await log_records(300)  # more than one full tile of 256
    await exchange.seal()
    url = f"{exchange.base_url}/ledger"
    async with httpx.AsyncClient() as client:
        vkey = (await client.get(f"{url}/vkey")).text.strip()

    honest = exchange.market("ledger", "verify", "--url", url, "--vkey", vkey)
    assert honest.returncode == 0, honest.stderr
    assert "verified" in honest.stdout
    assert " 300 entries" in honest.stdout

    # The same log name under another key: what a client pinned to the real key must refuse.
    other = NoteSigner.generate(vkey.split("+", 1)[0]).verifier.to_vkey()
    impostor = exchange.market("ledger", "verify", "--url", url, "--vkey", other)
    assert impostor.returncode == 1
    assert "FAILED" in impostor.stderr

    # An entry rewritten in the database after it was sealed: the served entry bundle no
    # longer hashes to the signed tree.
    await tamper(db, rewrite_entry(7))
    tampered = exchange.market("ledger", "verify", "--url", url, "--vkey", vkey)
    assert tampered.returncode == 1
    assert "market ledger verify: FAILED:" in tampered.stderr
    assert "verified" not in tampered.stdout


async def test_reconcile_exits_zero_when_clean_and_non_zero_with_findings(
    db: str, exchange: Exchange
) -> None:
    await log_records(20)
    await journal_store.post(
        order_payment_received(idempotency_key="pay-1", reference="order:1",
                               buyer_org_id="buyer-1", provider="bank_transfer",
                               amount=Money(10_000, "CNY")), actor="staff:1")
    await exchange.seal()

    clean = exchange.market("ledger", "reconcile")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 differences" in clean.stdout

    await tamper(
        db,
        "UPDATE journal_postings SET amount_minor = 1 WHERE transaction_id = "
        "(SELECT id FROM journal_transactions WHERE idempotency_key = 'pay-1')",
        rewrite_entry(3),
    )
    found = exchange.market("ledger", "reconcile")
    assert found.returncode == 1
    assert "entry_changed_after_logging" in found.stdout
    assert "leaf 3" in found.stdout
    assert "record_changed_after_logging" in found.stdout
    assert "journal journal:pay-1" in found.stdout
    assert "2 differences" in found.stdout
