"""The exchange's background jobs: what runs, and how often. Each job is a thin call into a
use case, so it runs the same whether a Celery worker or the web process executes it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from market.accounts import service as accounts


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], Coroutine[Any, Any, object]]
    every_s: float | None  # None: runs only when enqueued
    time_limit_s: int = 300


async def purge_expired_tokens() -> int:
    # Kept 30 days past expiry or revocation so that staff can still see why a call was refused.
    return await accounts.purge_expired_tokens(older_than=timedelta(days=30))


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("accounts.purge_expired_tokens", purge_expired_tokens, every_s=3600.0),
    )
}
