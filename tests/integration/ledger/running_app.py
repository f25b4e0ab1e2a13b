"""An HTTP client on an app whose lifespan runs on the test's own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from market.app import create_app
from market.settings import Settings


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    started, stopping = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # The lifespan holds an anyio task group, which must be left by the task that entered it.
        async with app.lifespan():
            started.set()
            await stopping.wait()

    lifespan = asyncio.create_task(run_lifespan())
    await started.wait()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=settings.base_url) as client:
            yield client
    finally:
        stopping.set()
        await lifespan
