"""`market run`: prepare the database, seed the demo once, and serve the API until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType

import uvicorn

from market.app import create_app
from market.database import migrate
from market.demo import DemoCredential, issue_demo_tokens, seed_demo_data
from market.embedded.ledger_chain import embedded_chain
from market.settings import Settings


def serve(settings: Settings, *, embedded_database: bool, seed_demo: bool) -> None:
    # uvicorn re-raises the signal that stopped it once it has shut down; SIGTERM's default
    # action would end the process on the spot and skip stopping the embedded servers.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # The local anvil (when no chain is configured) stops with the server, on Ctrl-C too.
    with embedded_chain(settings) as chained:
        credentials = asyncio.run(_prepare(seed_demo=seed_demo))
        print(_banner(chained, credentials, embedded_database=embedded_database), flush=True)
        server = uvicorn.Server(uvicorn.Config(
            create_app(chained), host=chained.host, port=chained.port,
            log_level=chained.log_level.lower(), access_log=False, lifespan="on"))
        server.run()


def serve_workers(settings: Settings) -> None:
    """The production form: several server processes, each building its app from the
    environment; migrations are a separate step (`market migrate`)."""
    uvicorn.run("market.asgi:app_from_environment", factory=True, host=settings.host,
                port=settings.port, workers=settings.web_workers,
                log_level=settings.log_level.lower(), access_log=False, proxy_headers=True)


async def _prepare(*, seed_demo: bool) -> list[DemoCredential]:
    await migrate()
    if not seed_demo:
        return []
    await seed_demo_data()
    return await issue_demo_tokens()


def _exit_on_sigterm(signal_number: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signal_number)


def _banner(settings: Settings, credentials: list[DemoCredential], *,
            embedded_database: bool) -> str:
    database = "embedded PostgreSQL in the data directory" if embedded_database else "DATABASE_URL"
    lines = [
        "",
        f"  {settings.exchange_name} is starting",
        f"  API:       {settings.base_url}/",
        f"  API docs:  {settings.base_url}/schema",
        f"  OpenAPI:   {settings.base_url}/schema/openapi.json",
        f"  Data:      {settings.data_dir}",
        f"  Database:  {database}",
        f"  Tasks:     {'in-process' if settings.broker_url is None else 'Celery via the broker'}",
        f"  Ledger:    {settings.base_url}/ledger/checkpoint",
        f"  Chain:     {settings.chain_rpc_url or 'none (anchoring off)'}",
    ]
    if credentials:
        lines += ["", "  Demo accounts (tokens valid for one day, new ones at every start):"]
        for credential in credentials:
            lines.append(f"    {credential.role.value:<9} {credential.email:<32} "
                         f"{credential.organisation}")
            lines.append(f"              Authorization: Bearer {credential.token}")
        example = credentials[0].token
        lines += ["", f"  Try:  curl -H 'Authorization: Bearer {example}' {settings.base_url}/me"]
    lines += ["", "  Press Ctrl-C to stop (the database server stops with it).", ""]
    return "\n".join(lines)
