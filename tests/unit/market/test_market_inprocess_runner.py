"""The in-process job runner: periodic turns, enqueued runs, failures survived, and a stop
that lets a running job finish instead of cancelling it mid-work."""

from __future__ import annotations

import asyncio

from market.jobs import Job
from market.tasks import InProcessRunner


async def test_periodic_job_runs_repeatedly_until_stopped() -> None:
    runs: list[int] = []
    three_turns = asyncio.Event()

    async def tick() -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            three_turns.set()

    runner = InProcessRunner({"tick": Job("tick", tick, every_s=0.01)})
    runner.start()
    await three_turns.wait()
    await runner.stop()
    finished = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == finished


async def test_stop_lets_a_running_job_finish() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    completed: list[bool] = []

    async def slow() -> None:
        started.set()
        await release.wait()
        completed.append(True)

    runner = InProcessRunner({"slow": Job("slow", slow, every_s=None)})
    runner.enqueue("slow")
    await started.wait()
    stopping = asyncio.create_task(runner.stop())
    await asyncio.sleep(0.02)
    assert not stopping.done()
    release.set()
    await stopping
    assert completed == [True]


async def test_stop_cancels_a_job_that_overruns_its_grace() -> None:
    async def stuck() -> None:
        await asyncio.Event().wait()

    runner = InProcessRunner({"stuck": Job("stuck", stuck, every_s=None)}, stop_grace_s=0.05)
    runner.enqueue("stuck")
    await asyncio.sleep(0)
    await runner.stop()


async def test_a_failing_job_is_logged_and_retried_on_its_next_turn() -> None:
    attempts: list[int] = []
    retried = asyncio.Event()

    async def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first turn fails")
        retried.set()

    runner = InProcessRunner({"flaky": Job("flaky", flaky, every_s=0.01)})
    runner.start()
    await retried.wait()
    await runner.stop()
    assert len(attempts) >= 2


async def test_nothing_is_enqueued_after_stop() -> None:
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)

    runner = InProcessRunner({"once": Job("once", once, every_s=None)})
    await runner.stop()
    runner.enqueue("once")
    await asyncio.sleep(0.02)
    assert runs == []
