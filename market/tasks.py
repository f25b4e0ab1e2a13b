"""Celery, and its in-process stand-in when no broker is configured.

With a broker (Redis), jobs are Celery tasks: `acks_late` so that a worker that dies mid-task
leaves the task for another, with hard and soft time limits, on a beat schedule. Without one,
the web process runs the same jobs on its own event loop (`InProcessRunner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from celery import Celery
from celery.signals import worker_process_init

from market.database import export_for_piccolo
from market.jobs import JOBS, Job
from market.settings import Settings

logger = logging.getLogger("market.tasks")


class TaskQueue(Protocol):
    def enqueue(self, job_name: str) -> None: ...


def create_celery(settings: Settings) -> Celery:
    app = Celery("market", broker=settings.broker_url, backend=settings.redis_url,
                 set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"global_keyprefix": settings.task_key_prefix},
        result_backend_transport_options={"global_keyprefix": settings.task_key_prefix},
        timezone="UTC",
        beat_schedule={
            job.name: {"task": job.name, "schedule": job.every_s}
            for job in JOBS.values() if job.every_s is not None
        },
    )
    for job in JOBS.values():
        app.task(name=job.name, time_limit=job.time_limit_s,
                 soft_time_limit=max(1, job.time_limit_s - 30))(_run_sync(job))
    return app


def _run_sync(job: Job) -> Callable[[], Any]:
    def run() -> Any:
        # A worker has no running loop; each task gets its own, and Piccolo opens connections
        # per query when no pool is started, so nothing leaks between loops.
        return asyncio.run(job.run())

    run.__name__ = job.name.replace(".", "_")
    return run


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _configure_worker_database(**_: Any) -> None:
    settings = Settings.from_env()
    if settings.database_url is None:
        raise RuntimeError("a Celery worker needs DATABASE_URL: the embedded database is private "
                           "to the web process")
    export_for_piccolo(settings.database_url)


class CeleryQueue:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def enqueue(self, job_name: str) -> None:
        self._app.send_task(job_name)


class InProcessRunner:
    """Runs jobs on the web server's event loop: enqueued ones at once, periodic ones on their
    interval. A job's failure is logged and retried on its next turn, never fatal.

    Stopping lets a running job finish (up to `stop_grace_s`) rather than cancelling it: a job
    cancelled inside a database call can leave its pooled connection unreleased, and closing
    the pool would then wait forever.
    """

    def __init__(self, jobs: dict[str, Job], *, stop_grace_s: float = 30.0) -> None:
        self._jobs = jobs
        self._stop_grace_s = stop_grace_s
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def enqueue(self, job_name: str) -> None:
        job = self._jobs[job_name]
        if not self._stopping.is_set():
            self._spawn(self._run_once(job))

    def start(self) -> None:
        for job in self._jobs.values():
            if job.every_s is not None:
                self._spawn(self._run_periodically(job, job.every_s))

    async def stop(self) -> None:
        self._stopping.set()
        if not self._tasks:
            return
        _, still_running = await asyncio.wait(set(self._tasks), timeout=self._stop_grace_s)
        for task in still_running:
            logger.warning("job task %s did not finish in %s s; cancelling it",
                           task.get_name(), self._stop_grace_s)
            task.cancel()
        for task in still_running:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_once(self, job: Job) -> None:
        try:
            await asyncio.wait_for(job.run(), timeout=job.time_limit_s)
        except Exception:
            logger.exception("job %s failed", job.name)

    async def _run_periodically(self, job: Job, every_s: float) -> None:
        while not self._stopping.is_set():
            await self._run_once(job)
            # Sleeps until the next turn, or wakes at once when the runner stops.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=every_s)
