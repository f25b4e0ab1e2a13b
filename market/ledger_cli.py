"""`market ledger …`: verify a log from its public endpoints or a proof bundle, reconcile,
seal."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from web3.exceptions import Web3Exception

from ledger.bundle_verify import Check, verify_bundle, verify_on_chain
from ledger.bundles import Web3AnchorReceipts
from ledger.cosignature import CosignatureVerifier
from ledger.recognition import Web3ConsortiumReader
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

    bundle = actions.add_parser(
        "verify-bundle", help="verify a proof bundle offline (and its anchor with --rpc)")
    bundle.add_argument("file", type=Path, help="the bundle (GET /ledger/bundle/{index})")
    bundle.add_argument("--trusted-vkey", help="the exchange's log key, as learnt out of band")
    bundle.add_argument("--trusted-witness", action="append", default=[], metavar="VKEY",
                        help="a witness's cosigner key whose cosignature must be present "
                             "(repeatable)")
    bundle.add_argument("--rpc", help="a chain node: also check the anchor on chain")
    bundle.set_defaults(command=verify_bundle_command)

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


def verify_bundle_command(_: Settings, arguments: argparse.Namespace) -> int:
    try:
        document = json.loads(arguments.file.read_text(encoding="utf-8"))
        witnesses = [CosignatureVerifier.from_vkey(vkey) for vkey in arguments.trusted_witness]
    except (OSError, ValueError) as error:
        print(f"market ledger verify-bundle: FAILED: {error}", file=sys.stderr)
        return 2
    checks = verify_bundle(document, trusted_vkey=arguments.trusted_vkey,
                           trusted_witnesses=witnesses)
    if arguments.rpc and checks[-1].passed:
        checks.append(asyncio.run(_check_on_chain(document, arguments.rpc)))
    for check in checks:
        print(f"{'ok' if check.passed else 'FAILED':<7} {check.name:<22} {check.detail}")
    failed = [check.name for check in checks if not check.passed]
    if failed:
        print(f"market ledger verify-bundle: FAILED: {failed[0]}", file=sys.stderr)
        return 1
    if not arguments.rpc:
        print("note: the anchor was checked offline only; pass --rpc to read it on chain")
    return 0


async def _check_on_chain(document: Any, rpc_url: str) -> Check:
    reader = Web3ConsortiumReader(rpc_url, document["anchor"]["contract"])
    receipts = Web3AnchorReceipts(rpc_url)
    try:
        return await verify_on_chain(document, reader, receipts)
    except (Web3Exception, aiohttp.ClientError, OSError, ValueError) as error:
        return Check("anchor on chain", False, f"{type(error).__name__}: {error}")
    finally:
        await reader.close()
        await receipts.close()


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
