"""The escalation ladder as data: who holds a case at each rung, and how long they have.

A ladder file (YAML) gives a default ladder, ladders per category, and per-unit overrides of
both and of the working calendar; a unit inherits the nearest override up its area tree. Each
rung names its holder (`member` or `leader` of the case's unit, `parent` for the leadership of
the parent unit, `parent-2` for the next parent up, …), a deadline to acknowledge and a
deadline to resolve, in working hours (`4h`, `30m`) or working days (`2d`, a day being the
unit's office hours). Errors name the file and the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, time, timedelta
from pathlib import Path
from typing import Literal

from services.routing.assignment import RungHolder
from services.routing.calendar import (
    DEFAULT_OFFICE_HOURS,
    TIMEZONE,
    CalendarError,
    CalendarSpec,
    WorkingCalendar,
)
from services.routing.yamlfile import Located, YamlFileError, parse_mapping, read_mapping

DEFAULT_LADDER_FILE = Path(__file__).with_name("default_ladder.yaml")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_HOLDER = re.compile(r"^(member|leader|parent)(?:-(\d+))?$")
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class LadderFileError(YamlFileError):
    """A ladder file that cannot be used; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Duration:
    """Working time: minutes and hours are clock time inside office hours; a day is the unit's
    office hours of one working day."""

    amount: float
    unit: Literal["m", "h", "d"]

    def span(self, calendar: WorkingCalendar) -> timedelta:
        if self.unit == "m":
            return timedelta(minutes=self.amount)
        if self.unit == "h":
            return timedelta(hours=self.amount)
        return calendar.day_length * self.amount

    def __str__(self) -> str:
        return f"{self.amount:g}{self.unit}"


# Who holds a rung: people with a role in the unit `level` steps above the case's unit.
Holder = RungHolder


@dataclass(frozen=True)
class Rung:
    holder: Holder
    acknowledge: Duration
    resolve: Duration


@dataclass(frozen=True)
class Policy:
    """Rules around the deadlines, the same for every unit."""

    # Remind the holder when this share of the time to resolve has passed.
    reminder_fractions: tuple[float, ...] = (0.5, 0.8)
    # Warn whoever holds the next rung this long before the deadline.
    heads_up_before: Duration = Duration(4, "h")
    # The longest the clock stays stopped waiting for a resident's answer.
    max_wait: Duration = Duration(5, "d")
    # Declines a case may collect at one rung before the next goes to the leader.
    declines_before_leader: int = 2
    # A resident may ask to escalate one case at most this often (clock time).
    resident_request_every: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class UnitOverride:
    calendar: CalendarSpec | None = None
    default: tuple[Rung, ...] | None = None
    categories: Mapping[str, tuple[Rung, ...]] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Ladder:
    default: tuple[Rung, ...]
    categories: Mapping[str, tuple[Rung, ...]]
    units: Mapping[str, UnitOverride]
    calendar: CalendarSpec
    policy: Policy
    path: str = "<built-in>"
    _calendars: dict[CalendarSpec, WorkingCalendar] = field(
        default_factory=dict, compare=False, repr=False
    )

    def rungs(self, chain: Sequence[str], category_id: str) -> tuple[Rung, ...]:
        """The ladder for a case of `category_id` in the first unit of `chain` (the unit and
        its ancestors, nearest first): the nearest unit that overrides it, else the category's,
        else the default."""
        for unit in chain:
            override = self.units.get(unit)
            if override is None:
                continue
            if category_id in override.categories:
                return override.categories[category_id]
            if override.default is not None:
                return override.default
        return self.categories.get(category_id, self.default)

    def holders(self, chain: Sequence[str], category_id: str) -> list[Holder]:
        return [r.holder for r in self.rungs(chain, category_id)]

    def calendar_for(self, chain: Sequence[str]) -> WorkingCalendar:
        spec = next(
            (
                self.units[u].calendar
                for u in chain
                if u in self.units and self.units[u].calendar is not None
            ),
            None,
        )
        spec = spec or self.calendar
        found = self._calendars.get(spec)
        if found is None:
            found = self._calendars[spec] = WorkingCalendar(spec)
        return found


def load_ladder_file(path: Path) -> Ladder:
    """Read and check a ladder file; raises LadderFileError naming the file and line."""
    return _Reader(str(path)).ladder(read_mapping(path, error=LadderFileError))


def parse_ladder(source: str, *, path: str = "<ladder>") -> Ladder:
    return _Reader(path).ladder(parse_mapping(source, path=path, error=LadderFileError))


def with_calendar_file(base: Ladder, path: Path) -> Ladder:
    """`base` with the calendars of another file (its `calendar` and `units: {id: {calendar}}`
    sections; anything else there is refused), for trying a calendar change on its own."""
    doc = read_mapping(path, error=LadderFileError)
    r = _Reader(str(path))
    r.keys(doc, {"calendar", "units"}, "a calendar file")
    calendar = r.calendar(r.mapping(doc, "calendar"), base.calendar)
    units = dict(base.units)
    unit_map = r.mapping(doc, "units")
    for unit_id in unit_map or {}:
        assert unit_map is not None
        item = r.mapping(unit_map, unit_id)
        if item is None:
            raise r.fail(unit_map.at(unit_id), f"đơn vị trống / empty unit '{unit_id}'")
        r.keys(item, {"calendar"}, f"unit '{unit_id}'")
        spec = r.calendar(r.mapping(item, "calendar"), calendar)
        old = units.get(str(unit_id), UnitOverride(line=unit_map.at(unit_id)))
        units[str(unit_id)] = replace(old, calendar=spec)
    return replace(base, calendar=calendar, units=units, path=f"{base.path} + {path}")


def default_ladder() -> Ladder:
    return load_ladder_file(DEFAULT_LADDER_FILE)


def _rank(holder: Holder) -> tuple[int, int]:
    return holder.level, 0 if holder.role == "member" else 1


_TOP_KEYS = {"calendar", "policy", "ladder", "categories", "units"}
_RUNG_KEYS = {"holder", "acknowledge", "resolve"}
_CALENDAR_KEYS = {"timezone", "office_hours", "make_up_days", "days_off", "public_holidays"}
_POLICY_KEYS = {
    "reminders",
    "heads_up_before",
    "max_wait",
    "declines_before_leader",
    "resident_request_every",
}
_UNIT_KEYS = {"calendar", "ladder", "categories"}


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, line: int | None, problem: str) -> LadderFileError:
        return LadderFileError(self.path, line, problem)

    def keys(self, item: Located, allowed: set[str], what: str) -> None:
        for key in item:
            if key not in allowed:
                raise self.fail(
                    item.at(key),
                    f"khóa không biết / unknown key '{key}' in {what} "
                    f"(expected one of: {', '.join(sorted(allowed))})",
                )

    def mapping(self, parent: Located, key: str) -> Located | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, Located):
            raise self.fail(parent.at(key), f"'{key}' phải là một bảng / must be a mapping")
        return value

    def ladder(self, doc: Located) -> Ladder:
        self.keys(doc, _TOP_KEYS, "the ladder file")
        if "ladder" not in doc:
            raise self.fail(doc.line, "thiếu mục / missing section 'ladder' (the default rungs)")
        default = self.rungs(doc, "ladder")
        calendar = self.calendar(self.mapping(doc, "calendar"), CalendarSpec())
        categories = {
            str(k): self.rungs(cats, k)
            for cats in [self.mapping(doc, "categories")]
            if cats
            for k in cats
        }
        units: dict[str, UnitOverride] = {}
        unit_map = self.mapping(doc, "units")
        for unit_id in unit_map or {}:
            assert unit_map is not None
            item = self.mapping(unit_map, unit_id)
            if item is None:
                raise self.fail(unit_map.at(unit_id), f"đơn vị trống / empty unit '{unit_id}'")
            self.keys(item, _UNIT_KEYS, f"unit '{unit_id}'")
            cal = self.mapping(item, "calendar")
            unit_cats = self.mapping(item, "categories")
            units[str(unit_id)] = UnitOverride(
                calendar=self.calendar(cal, calendar) if cal is not None else None,
                default=self.rungs(item, "ladder") if "ladder" in item else None,
                categories={str(k): self.rungs(unit_cats, k) for k in unit_cats or {}}
                if unit_cats
                else {},
                line=unit_map.at(unit_id),
            )
        return Ladder(
            default=default,
            categories=categories,
            units=units,
            calendar=calendar,
            policy=self.policy(self.mapping(doc, "policy")),
            path=self.path,
        )

    def rungs(self, parent: Located, key: str) -> tuple[Rung, ...]:
        value = parent.get(key)
        line = parent.at(key)
        if not isinstance(value, list) or not value:
            raise self.fail(
                line, f"'{key}' phải là danh sách bậc / must be a non-empty list of rungs"
            )
        out: list[Rung] = []
        for index, item in enumerate(value):
            if not isinstance(item, Located):
                raise self.fail(
                    line, f"bậc {index} phải là một bảng / rung {index} must be a mapping"
                )
            self.keys(item, _RUNG_KEYS, f"rung {index}")
            for needed in sorted(_RUNG_KEYS):
                if needed not in item:
                    raise self.fail(item.line, f"bậc {index} thiếu / rung {index} lacks '{needed}'")
            holder = self.holder(item, index)
            if out and _rank(holder) <= _rank(out[-1].holder):
                raise self.fail(
                    item.at("holder"),
                    f"bậc {index} ('{holder}') phải cao hơn bậc trước / rung {index} ('{holder}') "
                    f"must be above rung {index - 1} ('{out[-1].holder}')",
                )
            ack = self.duration(item, "acknowledge")
            resolve = self.duration(item, "resolve")
            if ack.unit == resolve.unit and ack.amount > resolve.amount:
                raise self.fail(
                    item.at("acknowledge"),
                    f"hạn tiếp nhận dài hơn hạn xử lý / acknowledge ({ack}) is longer than resolve ({resolve})",
                )
            out.append(Rung(holder=holder, acknowledge=ack, resolve=resolve))
        return tuple(out)

    def holder(self, item: Located, index: int) -> Holder:
        raw = str(item.get("holder", "")).strip()
        match = _HOLDER.match(raw)
        if match is None or (match.group(1) != "parent" and match.group(2)):
            raise self.fail(
                item.at("holder"),
                f"người giữ không hợp lệ / holder must be member, leader, parent or parent-N: '{raw}'",
            )
        kind, n = match.group(1), int(match.group(2) or 1)
        if kind == "parent":
            if n < 1:
                raise self.fail(item.at("holder"), f"'{raw}': N must be at least 1")
            return Holder(n, "leader")
        return Holder(0, "member" if kind == "member" else "leader")

    def duration(self, item: Located, key: str) -> Duration:
        raw = item.get(key)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = f"{raw}h"
        match = _DURATION.match(str(raw)) if raw is not None else None
        if match is None or float(match.group(1)) <= 0:
            raise self.fail(
                item.at(key),
                f"'{key}' phải là thời gian làm việc dương như 4h, 30m, 2d / must be positive "
                f"working time such as 4h, 30m, 2d: '{raw}'",
            )
        unit: Literal["m", "h", "d"] = match.group(2)  # type: ignore[assignment]
        return Duration(float(match.group(1)), unit)

    def calendar(self, item: Located | None, base: CalendarSpec) -> CalendarSpec:
        if item is None:
            return base
        self.keys(item, _CALENDAR_KEYS, "calendar")
        tz = str(item.get("timezone", base.timezone))
        hours = base.office_hours
        if "office_hours" in item:
            raw = item["office_hours"]
            if not isinstance(raw, list) or not raw:
                raise self.fail(
                    item.at("office_hours"), "'office_hours' must be a list like ['07:30-11:30']"
                )
            periods: list[tuple[time, time]] = []
            for period in raw:
                match = _PERIOD.match(str(period))
                if match is None:
                    raise self.fail(
                        item.at("office_hours"),
                        f"giờ làm việc không hợp lệ / office period must be HH:MM-HH:MM: '{period}'",
                    )
                h1, m1, h2, m2 = (int(g) for g in match.groups())
                try:
                    start, end = time(h1, m1), time(h2, m2)
                except ValueError as exc:
                    raise self.fail(item.at("office_hours"), f"'{period}': {exc}") from None
                if (periods and start < periods[-1][1]) or not start < end:
                    raise self.fail(
                        item.at("office_hours"),
                        f"giờ làm việc chồng lấn / office periods must be in order and not overlap: '{period}'",
                    )
                periods.append((start, end))
            hours = tuple(periods)
        spec = CalendarSpec(
            timezone=tz,
            office_hours=hours,
            weekend=base.weekend,
            make_up_days=base.make_up_days | self.days(item, "make_up_days"),
            days_off=base.days_off | self.days(item, "days_off"),
            public_holidays=bool(item.get("public_holidays", base.public_holidays)),
        )
        try:
            WorkingCalendar(spec)
        except (CalendarError, LookupError, ValueError) as exc:
            raise self.fail(item.line, f"lịch không hợp lệ / invalid calendar: {exc}") from None
        return spec

    def days(self, item: Located, key: str) -> frozenset[date]:
        raw = item.get(key) or []
        if not isinstance(raw, list):
            raise self.fail(
                item.at(key), f"'{key}' phải là danh sách ngày / must be a list of dates"
            )
        out = set()
        for value in raw:
            if isinstance(value, date):
                out.add(value)
                continue
            try:
                out.add(date.fromisoformat(str(value)))
            except ValueError:
                raise self.fail(
                    item.at(key), f"ngày không hợp lệ / not a date (YYYY-MM-DD): '{value}'"
                ) from None
        return frozenset(out)

    def policy(self, item: Located | None) -> Policy:
        base = Policy()
        if item is None:
            return base
        self.keys(item, _POLICY_KEYS, "policy")
        fractions = base.reminder_fractions
        if "reminders" in item:
            raw = item["reminders"]
            if not isinstance(raw, list) or not all(
                isinstance(f, int | float) and not isinstance(f, bool) and 0 < f < 1 for f in raw
            ):
                raise self.fail(
                    item.at("reminders"),
                    "'reminders' phải là các phân số trong (0, 1) / must be fractions between 0 and 1",
                )
            fractions = tuple(sorted(float(f) for f in raw))
        declines = item.get("declines_before_leader", base.declines_before_leader)
        if not isinstance(declines, int) or isinstance(declines, bool) or declines < 1:
            raise self.fail(
                item.at("declines_before_leader"), "'declines_before_leader' must be >= 1"
            )
        every = base.resident_request_every
        if "resident_request_every" in item:
            d = self.duration(item, "resident_request_every")
            every = (
                timedelta(minutes=d.amount)
                if d.unit == "m"
                else (timedelta(hours=d.amount) if d.unit == "h" else timedelta(days=d.amount))
            )
        return Policy(
            reminder_fractions=fractions,
            heads_up_before=self.duration(item, "heads_up_before")
            if "heads_up_before" in item
            else base.heads_up_before,
            max_wait=self.duration(item, "max_wait") if "max_wait" in item else base.max_wait,
            declines_before_leader=declines,
            resident_request_every=every,
        )


__all__ = [
    "DEFAULT_LADDER_FILE",
    "DEFAULT_OFFICE_HOURS",
    "TIMEZONE",
    "Duration",
    "Holder",
    "Ladder",
    "LadderFileError",
    "Policy",
    "Rung",
    "default_ladder",
    "load_ladder_file",
    "parse_ladder",
]
