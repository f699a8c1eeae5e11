"""Working time as officials count it: office hours on working days, in Asia/Ho_Chi_Minh.

A working day is a weekday that is not a Vietnamese public holiday (Tết included, from the
`holidays` package) and not a configured extra day off, or a weekend day the government made a
working day in exchange for a bridge holiday (known to `holidays`, plus configured make-up days).
Deadlines are counted only inside office hours of working days, so "8 working hours" given on a
Friday afternoon before Tết ends days later. Every input and output is an aware UTC datetime.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_OFFICE_HOURS: tuple[tuple[time, time], ...] = (
    (time(7, 30), time(11, 30)),
    (time(13, 30), time(17, 0)),
)
# Ten years without a single working minute means a misconfigured calendar, not a long wait.
_MAX_DAYS = 3660


class CalendarError(ValueError):
    """A calendar that cannot count working time (no office hours, no working days)."""


@dataclass(frozen=True)
class CalendarSpec:
    """What an administrator configures for a unit's calendar."""

    timezone: str = TIMEZONE
    office_hours: tuple[tuple[time, time], ...] = DEFAULT_OFFICE_HOURS
    weekend: frozenset[int] = frozenset({5, 6})
    make_up_days: frozenset[date] = frozenset()
    days_off: frozenset[date] = frozenset()
    public_holidays: bool = True


class WorkingCalendar:
    """Counts working time for one unit."""

    def __init__(self, spec: CalendarSpec | None = None) -> None:
        self.spec = spec or CalendarSpec()
        if not self.spec.office_hours:
            raise CalendarError("a calendar needs office hours")
        for start, end in self.spec.office_hours:
            if not start < end:
                raise CalendarError(f"office period {start}-{end} ends before it starts")
        self._tz = ZoneInfo(self.spec.timezone)
        self._holidays = holidays.country_holidays("VN") if self.spec.public_holidays else None
        self._working: dict[date, bool] = {}
        self._periods: dict[date, list[tuple[datetime, datetime]]] = {}
        self.day_length = sum(
            (
                datetime.combine(date.min, end) - datetime.combine(date.min, start)
                for start, end in self.spec.office_hours
            ),
            timedelta(),
        )

    def is_working_day(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            known = self._working[day] = self._compute_working(day)
        return known

    def _compute_working(self, day: date) -> bool:
        if day in self.spec.days_off:
            return False
        if day in self.spec.make_up_days:
            return True
        if self._holidays is not None:
            if day in self._holidays:  # populates the year on first look
                return False
            if day.weekday() in self.spec.weekend:
                return day in self._holidays.weekend_workdays
        return day.weekday() not in self.spec.weekend

    def local_date(self, at: datetime) -> date:
        return _aware(at).astimezone(self._tz).date()

    def periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The office periods of `day` in UTC; empty on a day off."""
        found = self._periods.get(day)
        if found is None:
            found = self._periods[day] = self._compute_periods(day)
        return found

    def _compute_periods(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(day):
            return []
        return [
            (
                datetime.combine(day, start, tzinfo=self._tz).astimezone(UTC),
                datetime.combine(day, end, tzinfo=self._tz).astimezone(UTC),
            )
            for start, end in self.spec.office_hours
        ]

    def _periods_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Office periods that end after `at`, the first one clipped to start at `at`."""
        day = self.local_date(at)
        for _ in range(_MAX_DAYS):
            for start, end in self.periods(day):
                if end > at:
                    yield max(start, at), end
            day += timedelta(days=1)
        raise CalendarError("no working time in ten years: check the calendar")

    def add_working(self, start: datetime, amount: timedelta) -> datetime:
        """The moment `amount` of working time after `start` has passed.

        A start outside office hours counts from the next opening; a zero amount gives that
        opening.
        """
        if amount < timedelta():
            raise ValueError("working time to add must not be negative")
        remaining = amount
        for begin, end in self._periods_from(_aware(start)):
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise AssertionError("unreachable")  # pragma: no cover

    def working_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time from `a` to `b` (zero when `b` is not after `a`)."""
        a, b = _aware(a), _aware(b)
        total = timedelta()
        if b <= a:
            return total
        for begin, end in self._periods_from(a):
            if begin >= b:
                break
            total += min(end, b) - begin
        return total

    def in_office_hours(self, at: datetime) -> bool:
        at = _aware(at)
        return any(start <= at < end for start, end in self.periods(self.local_date(at)))

    def next_office_time(self, at: datetime) -> datetime:
        """`at` itself in office hours, else the next opening."""
        begin, _ = next(self._periods_from(_aware(at)))
        return begin

    def next_opening_after_day_of(self, at: datetime) -> datetime:
        """The first opening on a working day after the local day of `at` (a daily notice's time)."""
        tomorrow = self.local_date(at) + timedelta(days=1)
        return self.next_office_time(datetime.combine(tomorrow, time(0), tzinfo=self._tz))


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("working time needs aware datetimes")
    return at.astimezone(UTC)


def parse_days(values: Iterable[object]) -> frozenset[date]:
    return frozenset(v if isinstance(v, date) else date.fromisoformat(str(v)) for v in values)
