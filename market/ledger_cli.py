"""`market ledger …`: verify a log from its public endpoints, reconcile, seal."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.reconcile import reconcile_and_record
from ledger.sealing import seal_all
from ledger.verify import VerificationError, verify_log
from market.database import database_server, export_for_piccolo, migrate
from market.ledger_wiring import ledger_signer, reconcile_options
from market.settings import Settings


def add_ledger_commands(commands: Any) -> None:
    ledger = commands.add_parser("ledger", help="verify, reconcile or seal the verifiable log")
    actions = ledger.add_subparsers(required=True, metavar="ACTION")

    verify = actions.add_parser("verify", help="verify a log from its public endpoints alone")
    verify.add_argument("--url", help="the log prefix (default: this exchange's /ledger)")
    verify.add_argument("--vkey", help="the log's verifier key (default: trust the served one)")
    verify.add_argument("--previous", type=Path,
                        help="a checkpoint seen earlier: prove the log only grew since")
    verify.add_argument("--save", type=Path, help="write the verified checkpoint here")
    verify.set_defaults(command=verify_command)

    actions.add_parser("reconcile", help="reconcile database, log, checkpoints and chain; "
                                         "record the result").set_defaults(
        command=reconcile_command)
    actions.add_parser("seal", help="seal pending leaves into a signed checkpoint").set_defaults(
        command=seal_command)


@contextmanager
def _database(settings: Settings) -> Iterator[Settings]:
    with database_server(settings) as database_url:
        export_for_piccolo(database_url)
        yield dataclasses.replace(settings, database_url=database_url)


def _progress(console: Console, description: str) -> Progress:
    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def verify_command(settings: Settings, arguments: argparse.Namespace) -> int:
    url = arguments.url or f"{settings.base_url}/ledger"
    previous = arguments.previous.read_text(encoding="utf-8") if arguments.previous else None
    console = Console(stderr=True)

    async def run() -> Any:
        with _progress(console, "entries") as progress:
            task = progress.add_task("verify", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            async with httpx.AsyncClient(timeout=30.0, follow_redirects=True) as client:
                return await verify_log(client, url, vkey=arguments.vkey,
                                        previous_checkpoint=previous, progress=advance)

    try:
        result = asyncio.run(run())
    except VerificationError as error:
        print(f"market ledger verify: FAILED: {error}", file=sys.stderr)
        return 1
    if arguments.save:
        arguments.save.write_text(result.checkpoint_note, encoding="utf-8")
    print(f"verified {result.origin}: {result.tree_size} entries, root "
          f"{result.root_hash.hex()}, {result.tiles_checked} tiles"
          + (f", consistent with size {result.consistent_with_previous}"
             if result.consistent_with_previous is not None else ""))
    if arguments.vkey is None:
        print(f"note: trusted the served key {result.vkey}; pass --vkey to pin it")
    return 0


def reconcile_command(settings: Settings, _: argparse.Namespace) -> int:
    console = Console(stderr=True)

    async def run() -> Any:
        await migrate()
        with _progress(console, "leaves") as progress:
            task = progress.add_task("reconcile", total=None)
            return await reconcile_and_record(
                reconcile_options(settings), trigger="cli",
                progress=lambda done, total: progress.update(task, completed=done, total=total))

    with _database(settings) as resolved:
        settings = resolved
        stored = asyncio.run(run())
    report = stored.report
    for item in report.discrepancies:
        print(f"{item.kind.value:<34} {item.where:<32} {item.detail}")
    print(f"reconciliation {stored.id}: {report.leaves_checked} leaves, tree size "
          f"{report.tree_size}, {len(report.discrepancies)} differences")
    return 0 if report.clean else 1


def seal_command(settings: Settings, _: argparse.Namespace) -> int:
    async def run() -> Any:
        await migrate()
        return await seal_all(ledger_signer(settings), wait=True)

    with _database(settings):
        result = asyncio.run(run())
    print(f"sealed: tree size {result.tree_size}, root {result.root_hash.hex()}")
    return 0
