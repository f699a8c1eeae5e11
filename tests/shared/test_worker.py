"""The background loop every service runs (`shared.worker.Worker`), without servers."""

from __future__ import annotations

import asyncio

from shared.worker import Worker
from tests.support import eventually


async def test_a_wake_during_a_step_runs_the_step_again() -> None:
    """A change that arrives while a step is running is not lost until the idle interval."""
    calls = 0
    release = asyncio.Event()
    worker: Worker

    async def step() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            worker.wake()  # something new arrives mid-step
            await release.wait()
        return False

    worker = Worker("test", step, idle_s=3600)
    worker.start()
    try:
        await eventually(lambda: asyncio.sleep(0, calls == 1), what="first step running")
        release.set()
        assert await eventually(lambda: asyncio.sleep(0, calls >= 2), what="second step", timeout=5)
    finally:
        await worker.stop()


async def test_an_idle_worker_wakes_when_the_next_work_falls_due() -> None:
    calls = 0

    async def step() -> bool:
        nonlocal calls
        calls += 1
        return False

    async def next_due() -> float | None:
        return 0.1

    worker = Worker("test", step, idle_s=3600, next_due=next_due)
    worker.start()
    try:
        assert await eventually(lambda: asyncio.sleep(0, calls >= 3), what="steps", timeout=5)
    finally:
        await worker.stop()


async def test_without_known_work_the_worker_sleeps_its_idle_interval() -> None:
    calls = 0

    async def step() -> bool:
        nonlocal calls
        calls += 1
        return False

    async def next_due() -> float | None:
        return None

    worker = Worker("test", step, idle_s=3600, next_due=next_due)
    worker.start()
    try:
        await eventually(lambda: asyncio.sleep(0, calls == 1), what="first step")
        await asyncio.sleep(0.3)
        assert calls == 1
        worker.wake()
        assert await eventually(lambda: asyncio.sleep(0, calls == 2), what="woken", timeout=5)
    finally:
        await worker.stop()


async def test_stop_ends_a_worker_whose_step_swallows_the_cancellation() -> None:
    """A step that turns a cancellation into its own error (as a client library's timeout can)
    is logged and retried like any failure; `stop()` still returns, and the loop is over."""
    steps = 0

    async def step() -> bool:
        nonlocal steps
        steps += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("timed out") from None
        return False

    worker = Worker("swallows", step, idle_s=0.01, error_pause_s=0.01)
    worker.start()
    await eventually(lambda: asyncio.sleep(0, steps >= 1), what="the step running")
    stopping = asyncio.create_task(worker.stop())
    done, _ = await asyncio.wait({stopping}, timeout=10)
    assert stopping in done, "stop() still waiting for a loop that lost its cancellation"
    assert not worker.running


async def test_a_stop_with_grace_lets_the_step_under_way_finish_and_starts_no_other() -> None:
    started = 0
    finished = 0

    async def step() -> bool:
        nonlocal started, finished
        started += 1
        await asyncio.sleep(0.3)
        finished += 1
        return True  # more waiting: without the stop it would run again at once

    worker = Worker("test", step, idle_s=3600)
    worker.start()
    await eventually(lambda: asyncio.sleep(0, started == 1), what="first step running")
    await worker.stop(grace_s=5)
    assert (started, finished) == (1, 1)
    assert not worker.running


async def test_a_step_longer_than_the_grace_is_cancelled() -> None:
    started = False
    finished = False

    async def step() -> bool:
        nonlocal started, finished
        started = True
        await asyncio.sleep(3600)
        finished = True
        return False

    worker = Worker("test", step, idle_s=3600)
    worker.start()
    await eventually(lambda: asyncio.sleep(0, started), what="the step running")
    await asyncio.wait_for(worker.stop(grace_s=0.2), 5)
    assert not finished
    assert not worker.running
