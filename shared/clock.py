"""The services' sense of "now", injectable so tests can move time in running processes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock tests set by hand."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at


class FileOffsetClock:
    """System time plus an offset in seconds read from a file, for end-to-end tests.

    The file is re-read when it changes, so a test can move several running services forward
    together by writing one number. Never used in production (settings refuse it).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime = -1.0
        self._offset = timedelta()

    def now(self) -> datetime:
        try:
            mtime = os.stat(self._path).st_mtime
        except FileNotFoundError:
            return datetime.now(UTC)
        if mtime != self._mtime:
            text = self._path.read_text().strip() or "0"
            self._offset = timedelta(seconds=float(text))
            self._mtime = mtime
        return datetime.now(UTC) + self._offset


def clock_from_env(path: str | None) -> Clock:
    return FileOffsetClock(Path(path)) if path else SystemClock()
