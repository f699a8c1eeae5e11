"""CPU time and resident memory of running processes, from /proc (Linux)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (its threads included), in seconds; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    """VmRSS of `pid`; 0 when it is gone."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def rss_snapshot(pids: Mapping[str, int]) -> dict[str, int]:
    return {name: rss_bytes(pid) for name, pid in pids.items()}


@dataclass
class RssSampler:
    """Samples every process's RSS once a second while running; keeps each one's peak and the
    peak of their sum (the stack's footprint at one moment)."""

    pids: Mapping[str, int]
    interval: float = 1.0
    peak: dict[str, int] = field(default_factory=dict)
    peak_total: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            sample = rss_snapshot(self.pids)
            for name, value in sample.items():
                self.peak[name] = max(self.peak.get(name, 0), value)
            self.peak_total = max(self.peak_total, sum(sample.values()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
