from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from market.app import create_app
from market.settings import Settings


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db, data_dir=tmp_path, request_max_body_bytes=64 * 1024)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, whose lifespan runs on the test's own event loop (so the
    connection pool it opens is usable by the test's direct database calls too)."""
    started, stopping = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # The lifespan holds an anyio task group, which must be left by the task that entered it.
        async with app.lifespan():
            started.set()
            await stopping.wait()

    lifespan = asyncio.create_task(run_lifespan())
    await asyncio.wait([lifespan, asyncio.create_task(started.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        lifespan.result()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://exchange.test") as http_client:
            yield http_client
    finally:
        stopping.set()
        await lifespan
