"""A local anvil node as a child process: the exchange's embedded default chain and the tests' one.

The binary comes from the npm package pinned in ``package.json`` (``npm ci`` installs it), so
every developer and CI job runs the same node. The node listens on 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx
from eth_account import Account

__all__ = [
    "ANVIL_BINARY_IN_PACKAGE",
    "DEV_ACCOUNT_COUNT",
    "DEV_CHAIN_ID",
    "DEV_MNEMONIC",
    "AnvilError",
    "AnvilNode",
    "derive_dev_private_keys",
    "find_anvil_binary",
]

ANVIL_BINARY_IN_PACKAGE = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")

# Anvil's own default mnemonic and chain id. The keys derived from this mnemonic are public
# test keys known to everyone: they are for a local development chain only and must never hold
# value or sign on a shared chain.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 10
DEV_CHAIN_ID = 31337

_LOCALHOST = "127.0.0.1"
_READINESS_POLL_INTERVAL_S = 0.05
_LOG_TAIL_LINES = 40


class AnvilError(RuntimeError):
    """The anvil node is missing, did not start, or is not running."""


def find_anvil_binary(project_root: Path) -> Path:
    """The anvil executable installed by ``npm ci`` under ``project_root``."""
    binary = project_root / ANVIL_BINARY_IN_PACKAGE
    if not binary.is_file():
        raise AnvilError(
            f"anvil not found at {binary}: run `npm ci` in {project_root} to install the "
            "pinned @foundry-rs/anvil-linux-amd64 package"
        )
    return binary


@cache
def derive_dev_private_keys(
    mnemonic: str = DEV_MNEMONIC, count: int = DEV_ACCOUNT_COUNT
) -> tuple[str, ...]:
    """The 0x-hex private keys anvil derives from ``mnemonic`` (BIP-44 path m/44'/60'/0'/0/i)."""
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}").key.to_0x_hex()
        for index in range(count)
    )


class AnvilNode:
    """One anvil process. ``AnvilNode(binary).start()`` or ``with AnvilNode(binary) as node``."""

    def __init__(
        self,
        binary: Path,
        *,
        log_path: Path | None = None,
        chain_id: int = DEV_CHAIN_ID,
        mnemonic: str = DEV_MNEMONIC,
        account_count: int = DEV_ACCOUNT_COUNT,
        startup_timeout_s: float = 30.0,
    ) -> None:
        self._binary = binary
        self._requested_log_path = log_path
        self._chain_id = chain_id
        self._mnemonic = mnemonic
        self._account_count = account_count
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._log_offset = 0
        self._finalizer: weakref.finalize[..., AnvilNode] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(
        self,
        port: int | None = None,
        state_path: Path | None = None,
        block_time_s: float | None = None,
    ) -> Self:
        """Start the node and wait until it answers JSON-RPC.

        ``port=None`` picks a free port. ``state_path`` keeps the chain across restarts: anvil
        loads it at start when it exists and writes it on a graceful stop (``--state``).
        ``block_time_s=None`` mines one block per transaction, as tests want; a number mines on
        that interval, like a real chain.
        """
        if self.is_running:
            raise AnvilError(f"anvil is already running at {self.rpc_url}")
        if block_time_s is not None and block_time_s <= 0:
            raise ValueError(f"block_time_s must be positive, got {block_time_s}")
        return self._start_once(
            port if port is not None else _pick_free_port(), state_path, block_time_s
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (anvil then writes its ``--state`` file), then SIGKILL after ``timeout_s``."""
        if self._finalizer is not None:
            self._finalizer.detach()
            _terminate(self._process, self._log_directory_to_remove(), timeout_s)
        self._finalizer = None
        self._process = None
        self._port = None

    def __enter__(self) -> Self:
        if not self.is_running:
            self.start()
        return self

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ information

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def port(self) -> int:
        if self._port is None or not self.is_running:
            raise AnvilError("anvil is not running")
        return self._port

    @property
    def rpc_url(self) -> str:
        return f"http://{_LOCALHOST}:{self.port}"

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def log_path(self) -> Path | None:
        """Where the node's output goes; a temporary file (removed on stop) unless given."""
        return self._log_path

    @property
    def dev_private_keys(self) -> tuple[str, ...]:
        """Private keys of the node's funded, unlocked accounts, in ``eth_accounts`` order."""
        return derive_dev_private_keys(self._mnemonic, self._account_count)

    # ------------------------------------------------------------------ internals

    def _start_once(self, port: int, state_path: Path | None, block_time_s: float | None) -> Self:
        try:
            self._launch(port, state_path, block_time_s)
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, port: int, state_path: Path | None, block_time_s: float | None) -> None:
        if self._requested_log_path is not None:
            log_path = self._requested_log_path
            log_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            log_path = Path(tempfile.mkdtemp(prefix="anvil-")) / "anvil.log"
        arguments = [
            str(self._binary),
            "--host",
            _LOCALHOST,
            "--port",
            str(port),
            "--chain-id",
            str(self._chain_id),
            "--mnemonic",
            self._mnemonic,
            "--accounts",
            str(self._account_count),
        ]
        if state_path is not None:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            arguments += ["--state", str(state_path)]
        if block_time_s is not None:
            arguments += ["--block-time", repr(block_time_s)]

        log_file: IO[bytes] = log_path.open("ab")
        # A caller's log file may hold earlier runs; readiness and errors look only at this one.
        self._log_offset = log_file.tell()
        try:
            # The arguments are built above from typed values, never from a shell string.
            process = subprocess.Popen(  # noqa: S603
                arguments, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            )
        finally:
            # The child holds its own descriptor; ours is not needed after the spawn.
            log_file.close()
        self._process = process
        self._port = port
        self._log_path = log_path
        # Guarantees the child is reaped even if the owner forgets stop() or the interpreter exits.
        self._finalizer = weakref.finalize(
            self, _terminate, process, self._log_directory_to_remove(), 10.0
        )

    def _wait_until_ready(self) -> None:
        process = self._process
        assert process is not None, "_launch sets the process"
        rpc_url = f"http://{_LOCALHOST}:{self._port}"
        # Anvil prints this once it has bound the port. Requiring it in our own log, and not
        # only an answer on the port, rules out mistaking another node on that port for ours.
        listening_line = f"Listening on {_LOCALHOST}:{self._port}"
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        deadline = time.monotonic() + self._startup_timeout_s
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                exit_code = process.poll()
                if exit_code is not None:
                    raise AnvilError(
                        f"anvil exited with code {exit_code} before answering on {rpc_url}; "
                        f"log tail:\n{self._log_tail()}"
                    )
                if listening_line in self._log_text():
                    try:
                        answer = client.post(rpc_url, json=request).json()
                    except (httpx.TransportError, ValueError):
                        answer = None
                    if answer is not None:
                        if answer.get("result") == hex(self._chain_id):
                            return
                        raise AnvilError(
                            f"anvil on {rpc_url} answered eth_chainId with {answer!r}, "
                            f"expected {hex(self._chain_id)}"
                        )
                time.sleep(_READINESS_POLL_INTERVAL_S)
        raise AnvilError(
            f"anvil did not answer on {rpc_url} within {self._startup_timeout_s} s; "
            f"log tail:\n{self._log_tail()}"
        )

    def _log_text(self) -> str:
        """What this run of the node has written to its log so far."""
        if self._log_path is None or not self._log_path.is_file():
            return ""
        with self._log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", errors="replace")

    def _log_tail(self) -> str:
        lines = self._log_text().splitlines()[-_LOG_TAIL_LINES:]
        return "\n".join(lines) if lines else "(the log is empty)"

    def _log_directory_to_remove(self) -> Path | None:
        if self._requested_log_path is not None or self._log_path is None:
            return None
        return self._log_path.parent


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((_LOCALHOST, port))
        except OSError:
            return False
        return True


def _pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_LOCALHOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _terminate(
    process: subprocess.Popen[bytes] | None, log_directory: Path | None, timeout_s: float
) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if log_directory is not None:
        shutil.rmtree(log_directory, ignore_errors=True)
