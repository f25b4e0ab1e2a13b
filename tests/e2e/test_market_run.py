"""`make run`'s entry point, `market run`: starts on embedded defaults in a fresh data directory,
serves authenticated requests with a demo token, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

STARTUP_DEADLINE_S = 180
# Variables that would switch a part to an external service; the smoke test wants the defaults.
EXTERNAL_SERVICE_VARIABLES = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CHAIN_RPC_URL",
                              "STRIPE_API_KEY", "PICCOLO_CONF"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command_line = " ".join(process.info["cmdline"] or [])
        if str(path) in command_line:
            found.append(process)
    return found


def _wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"market run exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"market run was not ready in {STARTUP_DEADLINE_S} s:\n{log.read_text()}")


def _run_once(data_dir: Path, log: Path) -> dict[str, object]:
    """Start `market run`, check it serves the demo, press Ctrl-C; returns the staff's /me."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = {key: value for key, value in os.environ.items()
                   if key not in EXTERNAL_SERVICE_VARIABLES}
    environment |= {"MARKET_DATA_DIR": str(data_dir), "MARKET_PORT": str(port)}
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "market.cli", "run"], env=environment,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(base_url, process, log)
        banner = log.read_text()
        assert f"{base_url}/schema" in banner
        tokens = re.findall(r"Authorization: Bearer (pdx_\S+)", banner)
        assert len(tokens) >= 5, banner

        me = httpx.get(f"{base_url}/me", headers={"Authorization": f"Bearer {tokens[0]}"})
        assert me.status_code == 200, me.text
        assert me.json()["user"]["role"] == "staff"
        assert httpx.get(f"{base_url}/schema/openapi.json").json()["openapi"].startswith("3.1")
        assert (data_dir / "postgres" / "PG_VERSION").exists()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"market run ignored Ctrl-C:\n{log.read_text()}") from None

    deadline = time.monotonic() + 15
    while _processes_using(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_using(data_dir) == [], log.read_text()
    result: dict[str, object] = me.json()
    return result


def test_market_run_serves_the_demo_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = _run_once(data_dir, tmp_path / "first.log")
    # A restart keeps the database in the data directory and does not seed the demo again.
    second = _run_once(data_dir, tmp_path / "second.log")
    assert second["user"] == first["user"]
