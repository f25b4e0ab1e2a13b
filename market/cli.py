"""The `market` command: run the exchange, migrate, seed, manage accounts, run workers."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

from market.accounts import service as accounts
from market.accounts.model import OrganisationKind
from market.consortium_cli import add_consortium_commands
from market.database import database_server, export_for_piccolo, migrate
from market.demo import seed_demo_data
from market.errors import NotFoundError
from market.ledger_cli import add_ledger_commands
from market.runner import serve, serve_workers
from market.settings import Settings, SettingsError
from market.tasks import create_celery


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"market: {error}", file=sys.stderr)
        return 2
    command: Callable[[Settings, argparse.Namespace], int] = arguments.command
    return command(settings, arguments)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="market", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run",
                              help="start the exchange (embedded defaults unless configured)")
    run.add_argument("--no-demo", action="store_true", help="do not seed demo data")
    run.set_defaults(command=run_command)

    commands.add_parser(
        "serve", help="serve the API with MARKET_WEB_WORKERS workers on external services "
                      "(DATABASE_URL required; production form)").set_defaults(
        command=serve_command)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        command=migrate_command)
    commands.add_parser("demo", help="seed the demo data (once)").set_defaults(
        command=demo_command)
    commands.add_parser("worker", help="run a Celery worker (needs a broker)").set_defaults(
        command=worker_command)
    commands.add_parser("beat", help="run Celery beat (needs a broker)").set_defaults(
        command=beat_command)

    staff = commands.add_parser("create-staff",
                                help="create an exchange staff user and print a token for it")
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", required=True, help="display name")
    staff.set_defaults(command=create_staff_command)

    add_ledger_commands(commands)
    add_consortium_commands(commands)

    token = commands.add_parser("token", help="issue or revoke API tokens")
    token_commands = token.add_subparsers(required=True, metavar="ACTION")
    issue = token_commands.add_parser("issue", help="issue a token for a user, shown once")
    issue.add_argument("--email", required=True)
    issue.add_argument("--label", default="issued from the command line")
    issue.add_argument("--days", type=int, default=None,
                       help="lifetime in days (default MARKET_TOKEN_TTL_DAYS)")
    issue.set_defaults(command=issue_token_command)
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", type=UUID)
    revoke.set_defaults(command=revoke_token_command)
    return parser


@contextmanager
def _database(settings: Settings) -> Iterator[Settings]:
    with database_server(settings) as database_url:
        export_for_piccolo(database_url)
        yield dataclasses.replace(settings, database_url=database_url)


def _run_async(work: Callable[[], Awaitable[Any]]) -> Any:
    async def wrapped() -> Any:
        return await work()

    return asyncio.run(wrapped())


def migrate_command(settings: Settings, _: argparse.Namespace) -> int:
    with _database(settings):
        _run_async(migrate)
    return 0


def demo_command(settings: Settings, _: argparse.Namespace) -> int:
    with _database(settings):
        _run_async(migrate)
        seeded = _run_async(seed_demo_data)
    print("demo data seeded" if seeded else "demo data already present")
    return 0


def run_command(settings: Settings, arguments: argparse.Namespace) -> int:
    with _database(settings) as resolved:
        serve(resolved, embedded_database=settings.uses_embedded_database,
              seed_demo=not arguments.no_demo)
    return 0


def serve_command(settings: Settings, _: argparse.Namespace) -> int:
    if settings.database_url is None:
        print("market serve needs DATABASE_URL; `market run` starts the embedded defaults",
              file=sys.stderr)
        return 2
    serve_workers(settings)
    return 0


def worker_command(settings: Settings, _: argparse.Namespace) -> int:
    if settings.broker_url is None or settings.database_url is None:
        print("market worker needs REDIS_URL (or CELERY_BROKER_URL) and DATABASE_URL; without a "
              "broker, `market run` runs the jobs in-process", file=sys.stderr)
        return 2
    export_for_piccolo(settings.database_url)
    create_celery(settings).worker_main(["worker", "--loglevel", settings.log_level,
                                         "--concurrency", "2"])
    return 0


def beat_command(settings: Settings, _: argparse.Namespace) -> int:
    if settings.broker_url is None:
        print("market beat needs REDIS_URL (or CELERY_BROKER_URL)", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    create_celery(settings).start(["beat", "--loglevel", settings.log_level, "--schedule",
                                   str(settings.data_dir / "celerybeat-schedule")])
    return 0


def create_staff_command(settings: Settings, arguments: argparse.Namespace) -> int:
    async def create() -> str:
        organisation = await accounts.find_organisation_by_name(settings.exchange_name)
        if organisation is None:
            organisation = await accounts.create_organisation(settings.exchange_name,
                                                              OrganisationKind.EXCHANGE)
        elif organisation.kind is not OrganisationKind.EXCHANGE:
            raise SystemExit(f"{settings.exchange_name!r} exists but is not an exchange")
        user = await accounts.create_user(organisation.id, arguments.email, arguments.name)
        issued = await accounts.issue_api_token(user.id, "first staff token",
                                                timedelta(days=settings.token_ttl_days))
        return issued.secret

    with _database(settings):
        _run_async(migrate)
        secret = _run_async(create)
    print(f"staff user {arguments.email} created; its token (shown once):\n{secret}")
    return 0


def issue_token_command(settings: Settings, arguments: argparse.Namespace) -> int:
    days = arguments.days or settings.token_ttl_days

    async def issue() -> str | None:
        user = await accounts.find_user_by_email(arguments.email)
        if user is None:
            return None
        issued = await accounts.issue_api_token(user.id, arguments.label, timedelta(days=days))
        expires = f"{issued.record.expires_at:%Y-%m-%d %H:%M}Z"
        return (f"token {issued.record.id} for {user.email}, expires {expires} "
                f"(shown once):\n{issued.secret}")

    with _database(settings):
        message = _run_async(issue)
    if message is None:
        print(f"market: no user with email {arguments.email}", file=sys.stderr)
        return 1
    print(message)
    return 0


def revoke_token_command(settings: Settings, arguments: argparse.Namespace) -> int:
    with _database(settings):
        try:
            record = _run_async(lambda: accounts.revoke_token_by_id(arguments.token_id))
        except NotFoundError:
            print(f"market: no token {arguments.token_id}", file=sys.stderr)
            return 1
    print(f"token {record.id} revoked at {record.revoked_at:%Y-%m-%d %H:%M:%S}Z")
    return 0


if __name__ == "__main__":
    sys.exit(main())
