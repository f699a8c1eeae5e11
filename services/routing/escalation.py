"""Escalation rules as plain functions: the deadlines a rung gets, and what a due deadline means
for the case it belongs to. No database, no clock: the sweep gives them data and `now`.

- Placed at a rung, the holder must acknowledge (accept) within the rung's acknowledge time and
  resolve within its resolve time, both in the unit's working time.
- The holder is reminded when given shares of the resolve time have passed; whoever holds the
  next rung is warned a while before the deadline. Reminders go only in office hours: one that
  falls due outside them waits for the next opening.
- A passed acknowledge deadline (case still not accepted) or resolve deadline escalates.
- While the case waits for the resident nothing is due but the longest wait, which resumes it.
- At the top rung an overdue case stays open, flagged; leadership is told once a day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from services.routing.calendar import WorkingCalendar
from services.routing.ladder import Policy, Rung
from services.routing.lifecycle import OPEN

DeadlineKind = Literal[
    "ack", "resolve", "reminder", "heads_up", "max_wait", "top_daily", "resolved", "quiet_close"
]


@dataclass(frozen=True)
class Planned:
    kind: DeadlineKind
    due_at: datetime
    fraction: float | None = None

    def as_json(self) -> list[Any]:
        """As kept in a deadline row's `later`: [kind, due_at (ISO, UTC), fraction]."""
        return [self.kind, self.due_at.astimezone(UTC).isoformat(), self.fraction]

    @staticmethod
    def from_json(item: Sequence[Any]) -> Planned:
        kind, due_at, fraction = item
        return Planned(kind, datetime.fromisoformat(due_at), fraction)


@dataclass(frozen=True)
class Plan:
    due_at: datetime
    ack_due_at: datetime | None
    rows: tuple[Planned, ...]


@lru_cache(maxsize=4096)
def plan_rung(
    calendar: WorkingCalendar,
    rung: Rung,
    policy: Policy,
    start: datetime,
    *,
    remaining: timedelta | None = None,
    acknowledged: bool = False,
    has_next: bool = True,
) -> Plan:
    """Deadlines for a case placed at `rung` at `start`.

    `remaining` is the working time left to resolve when the clock restarts after a pause;
    reminders already passed before the pause are not planned again.

    Memoised: a sweep places thousands of cases at the same `start` on a handful of calendars
    and rungs, and the plan (immutable) is the same for all of them.
    """
    total = rung.resolve.span(calendar)
    left = total if remaining is None else max(remaining, timedelta())
    due = calendar.add_working(start, left)
    rows = [Planned("resolve", due)]
    ack_due = None
    if not acknowledged:
        ack_due = calendar.add_working(start, rung.acknowledge.span(calendar))
        if ack_due < due:
            rows.append(Planned("ack", ack_due))
    for fraction in policy.reminder_fractions:
        left_then = total * (1 - fraction)
        if left > left_then:
            rows.append(
                Planned("reminder", calendar.add_working(start, left - left_then), fraction)
            )
    warn = policy.heads_up_before.span(calendar)
    if has_next and left > warn:
        rows.append(Planned("heads_up", calendar.add_working(start, left - warn)))
    return Plan(due_at=due, ack_due_at=ack_due, rows=tuple(rows))


def max_wait_until(calendar: WorkingCalendar, policy: Policy, start: datetime) -> datetime:
    return calendar.add_working(start, policy.max_wait.span(calendar))


@dataclass(frozen=True)
class DueRow:
    id: int
    kind: str
    rung: int
    due_at: datetime
    fraction: float | None = None
    # "" for the row itself; for a deadline that rode on the row (`later`), what tells it apart
    # from the row's others, so each notice gets an id of its own.
    key: str = ""


def unfold(
    row: DueRow, later: Sequence[Any] | None, now: datetime
) -> tuple[list[DueRow], list[Planned]]:
    """A due row and the deadlines riding on it: those due by `now` (all due together, as the
    separate rows they stand for would be) and those still to come, in order."""
    due: list[DueRow] = [row]
    rest: list[Planned] = []
    for i, item in enumerate(later or ()):
        p = Planned.from_json(item)
        if p.due_at <= now and not rest:
            due.append(DueRow(row.id, p.kind, row.rung, p.due_at, p.fraction, key=f"{i}:{p.kind}"))
        else:
            rest.append(p)
    return due, rest


@dataclass(frozen=True)
class CaseView:
    status: str
    rung: int
    flag: str | None


@dataclass(frozen=True)
class Decision:
    """What to do with a case whose deadline rows in `due` have come."""

    escalate: bool = False
    resume: bool = False
    remind: DueRow | None = None
    heads_up: DueRow | None = None
    top_daily: DueRow | None = None
    # Rows finished without effect (stale, superseded, or fired by this decision).
    done: tuple[int, ...] = ()
    # Reminders that came due outside office hours: they wait for the next opening.
    postpone: tuple[int, ...] = ()
    reason: str = ""
    # A resolved case: the quiet period starts at this row's time (plan the close) …
    quiet_from: DueRow | None = None
    # … or it has passed without a word from the resident: close the case.
    close: bool = False

    @property
    def acts(self) -> bool:
        return bool(
            self.escalate
            or self.resume
            or self.remind
            or self.heads_up
            or self.top_daily
            or self.quiet_from
            or self.close
        )


def decide(case: CaseView, due: Sequence[DueRow], *, in_office_hours: bool) -> Decision:
    """The effect of the deadline rows `due` (all due now) on `case`."""
    ids = tuple(r.id for r in due)
    if case.status == "resolved":
        current = [r for r in due if r.rung == case.rung]
        quiet = [r for r in current if r.kind == "quiet_close"]
        marks = [r for r in current if r.kind == "resolved"]
        return Decision(
            close=bool(quiet),
            quiet_from=marks[-1] if marks and not quiet else None,
            done=ids,
            reason="quiet period" if current else "stale",
        )
    if case.status not in OPEN:
        return Decision(done=ids, reason="case closed")
    current = [r for r in due if r.rung == case.rung]
    stale = tuple(r.id for r in due if r.rung != case.rung)
    if case.status == "waiting_for_resident":
        waits = [r for r in current if r.kind == "max_wait"]
        return Decision(resume=bool(waits), done=ids, reason="max wait" if waits else "paused")
    passed = [
        r
        for r in current
        if r.kind == "resolve" or (r.kind == "ack" and case.status in ("assigned", "unassigned"))
    ]
    if passed and case.flag != "overdue_top":
        return Decision(escalate=True, done=ids, reason=passed[0].kind)
    notices = [r for r in current if r.kind in ("reminder", "heads_up", "top_daily")]
    if notices and not in_office_hours:
        keep = {r.id for r in notices}
        return Decision(
            done=tuple(i for i in ids if i not in keep), postpone=tuple(keep), reason="after hours"
        )
    reminders = sorted(
        (r for r in current if r.kind == "reminder"), key=lambda r: r.fraction or 0.0
    )
    heads_up = [r for r in current if r.kind == "heads_up"]
    top = [r for r in current if r.kind == "top_daily"]
    return Decision(
        remind=reminders[-1] if reminders else None,
        heads_up=heads_up[-1] if heads_up else None,
        top_daily=top[-1] if top and case.flag == "overdue_top" else None,
        done=ids,
        reason="notices" if notices else ("stale" if stale else "nothing"),
    )
