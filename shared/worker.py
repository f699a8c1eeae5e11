"""Background work that runs until stopped: the outbox relay, delivery, sweeps.

One shape for all of them: run a step; run again at once while the step says more is waiting;
otherwise sleep until the idle interval passes (or the next work falls due, when the worker
knows) or someone calls `wake()`. A wake that arrives while a step runs is kept: the step runs
again right after. A failing step is logged and retried after a pause; it never ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Worker:
    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[bool]],
        *,
        idle_s: float,
        error_pause_s: float = 1.0,
        next_due: Callable[[], Awaitable[float | None]] | None = None,
    ) -> None:
        """`step` returns True when more work may be waiting (run again at once). `next_due`,
        when given, says in how many seconds the next known work falls due (None: nothing
        known); an idle worker sleeps no longer than that."""
        self.name = name
        self._step = step
        self._next_due = next_due
        self._idle_s = idle_s
        self._error_pause_s = error_pause_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Something new to do: run the step now instead of at the next interval."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, *, grace_s: float = 0.0) -> None:
        """Let the step under way finish for up to `grace_s` (no new step starts), then cancel
        the loop and wait until it has ended.

        A cancellation can be lost inside a step: a library that turns it into its own error
        (Python 3.11's `wait_for` returns a timeout when both land together, and a client's
        request then raises its timeout error), which the loop logs and retries. So the loop
        also ends at its next turn once stopping, and the cancel is repeated until it has."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if grace_s > 0:
            self._wake.set()
            await asyncio.wait({task}, timeout=grace_s)
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if not task.cancelled():
            task.result()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                more = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker_step_failed", worker=self.name)
                more = False
                await asyncio.sleep(self._error_pause_s)
            if not more:
                pause = await self._idle()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)

    async def _idle(self) -> float:
        """How long to sleep unless woken: the idle interval, or less when work is due sooner."""
        if self._next_due is None:
            return self._idle_s
        try:
            due = await self._next_due()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker_next_due_failed", worker=self.name)
            return self._idle_s
        if due is None:
            return self._idle_s
        # Never a busy loop, even when something is already overdue.
        return min(self._idle_s, max(0.05, due))
