"""Resolution tracking: what happened to each petition (time to first response, time to
resolution, on time or late at each rung, reopen count, the resident's satisfaction) and what it
adds to the per-day counters of each unit and member.

Events of one petition arrive on separate consumers and may come in any order, so a petition's
facts are replayed from its timeline (a handful of rows) in the handler's transaction, and only
the difference between what the petition now contributes and what it contributed before is
added to `stats_daily`. Queries sum a date range of those counters: never a scan of petitions.

Definitions (docs/notifications.md):
- first response: the first accept, question to the resident or resolution after submission;
- resolution time: from submission to a resolution;
- a rung is on time when it was resolved by its deadline, late when resolved after it or
  escalated because it passed; the on-time rate is on-time resolutions over resolutions plus
  deadline escalations (the share of cases resolved within their deadline);
- counters are dated by the local (Asia/Ho_Chi_Minh) day on which the counted thing happened and
  attributed to the member (and their unit) who held the case.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseDeclined,
    CaseEscalated,
    CaseQuestionAsked,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    Event,
    FeedbackGiven,
    PetitionSubmitted,
    PetitionWithdrawn,
    parse_event,
)

from .models import STAT_COUNTERS, petition_facts, stats_daily, timeline
from .statements import Statements

OPEN_STATUSES = ("submitted", "assigned", "accepted", "waiting_for_resident", "escalated")
Counters = dict[str, int]


@dataclass
class Rung:
    """One holder's time with the case at one rung."""

    rung: int
    member_id: str
    member_name: str
    unit_id: str
    case_id: str
    assigned_at: datetime
    due_at: datetime | None
    ended_at: datetime | None = None
    # open | resolved | escalated | reassigned | declined | closed | rejected | withdrawn
    outcome: str = "open"
    # True on time, False late, None not decided by a deadline (reassigned, still open…).
    on_time: bool | None = None
    escalation_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("assigned_at", "due_at", "ended_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass
class Resolution:
    at: datetime
    member_id: str
    unit_id: str
    rung: int
    on_time: bool | None
    reopened_at: datetime | None = None


@dataclass
class Feedback:
    at: datetime
    satisfied: bool
    member_id: str | None
    unit_id: str | None


@dataclass
class Facts:
    petition_id: str
    reference: str | None = None
    title: str | None = None
    origin_unit_id: str | None = None
    submitted_at: datetime | None = None
    status: str = "unknown"
    first_response_at: datetime | None = None
    first_response_by: tuple[str, str] | None = None
    closed_at: datetime | None = None
    rungs: list[Rung] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    escalations: list[tuple[datetime, str]] = field(default_factory=list)
    reopen_count: int = 0

    @property
    def current(self) -> Rung | None:
        return self.rungs[-1] if self.rungs else None

    @property
    def satisfied(self) -> bool | None:
        return self.feedback[-1].satisfied if self.feedback else None

    @property
    def resolved_at(self) -> datetime | None:
        return self.resolutions[-1].at if self.resolutions else None

    def holder_before(self, at: datetime) -> str | None:
        """Who held the case just before `at`."""
        for period in reversed(self.rungs):
            if period.assigned_at < at:
                return period.member_id
        return None

    def resolver_before(self, at: datetime) -> str | None:
        for resolution in reversed(self.resolutions):
            if resolution.at <= at:
                return resolution.member_id
        return None

    def escalation_reason_before(self, at: datetime) -> str | None:
        for when, reason in reversed(self.escalations):
            if when <= at:
                return reason
        return None

    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def _end(period: Rung | None, at: datetime, outcome: str, on_time: bool | None = None) -> None:
    if period is not None and period.outcome == "open":
        period.ended_at = at
        period.outcome = outcome
        period.on_time = on_time


def replay(petition_id: str, events: Iterable[Event]) -> Facts:
    """A petition's facts from its events, taken in the order they happened."""
    facts = Facts(petition_id=petition_id)
    for event in sorted(events, key=lambda e: e.occurred_at):
        _apply(facts, event)
    return facts


def _apply(facts: Facts, event: Event) -> None:
    """What one event changes in the facts."""
    at = event.occurred_at
    match event:
        case PetitionSubmitted():
            facts.reference, facts.title = event.reference, event.title
            facts.origin_unit_id = event.unit_id
            facts.submitted_at = at
            if facts.status == "unknown":
                facts.status = "submitted"
        case CaseAssigned():
            _assigned(facts, event)
        case CaseAccepted():
            _responded(facts, at)
            facts.status = "accepted"
        case CaseQuestionAsked():
            _responded(facts, at)
            facts.status = "waiting_for_resident"
        case CaseResumed():
            if facts.current is not None and event.due_at is not None:
                facts.current.due_at = event.due_at
            facts.status = "accepted"
        case CaseResolved():
            _resolved(facts, at)
        case CaseDeclined():
            _end(facts.current, at, "declined")
        case CaseEscalated():
            _escalated(facts, event)
        case CaseReopened():
            _reopened(facts, at)
        case FeedbackGiven():
            last = facts.resolutions[-1] if facts.resolutions else None
            member_id, unit_id = (last.member_id, last.unit_id) if last else (None, None)
            facts.feedback.append(Feedback(at, event.resolved, member_id, unit_id))
        case CaseClosed() | CaseRejected() | PetitionWithdrawn():
            _ended(facts, event)


def _responded(facts: Facts, at: datetime) -> None:
    """The first accept, question or resolution is the first response, by whoever held it."""
    if facts.first_response_at is None and facts.current is not None:
        facts.first_response_at = at
        facts.first_response_by = (facts.current.member_id, facts.current.unit_id)


def _assigned(facts: Facts, event: CaseAssigned) -> None:
    """A new holder: the previous rung (if still open) ends as reassigned."""
    _end(facts.current, event.occurred_at, "reassigned")
    facts.rungs.append(
        Rung(
            rung=event.rung,
            member_id=event.member_id,
            member_name=event.member_name,
            unit_id=event.unit_id,
            case_id=str(event.case_id),
            assigned_at=event.occurred_at,
            due_at=event.due_at,
        )
    )
    facts.status = "assigned"


def _resolved(facts: Facts, at: datetime) -> None:
    """A resolution is on time when it came by the rung's deadline (or there was none)."""
    _responded(facts, at)
    current = facts.current
    if current is not None and current.outcome == "open":
        on_time = current.due_at is None or at <= current.due_at
        _end(current, at, "resolved", on_time)
        facts.resolutions.append(
            Resolution(at, current.member_id, current.unit_id, current.rung, on_time)
        )
    facts.status = "resolved"


def _escalated(facts: Facts, event: CaseEscalated) -> None:
    """A rung escalated because its deadline passed was late; for any other reason it is
    not judged on time or late."""
    facts.escalations.append((event.occurred_at, event.reason))
    current = facts.current
    if current is not None and current.outcome == "open":
        late = False if event.reason == "deadline_passed" else None
        _end(current, event.occurred_at, "escalated", late)
        current.escalation_reason = event.reason
    facts.status = "escalated"


def _reopened(facts: Facts, at: datetime) -> None:
    """The latest resolution before the reopening did not hold."""
    facts.reopen_count += 1
    for resolution in reversed(facts.resolutions):
        if resolution.at <= at and resolution.reopened_at is None:
            resolution.reopened_at = at
            break
    facts.status = "reopened"


def _ended(facts: Facts, event: CaseClosed | CaseRejected | PetitionWithdrawn) -> None:
    at = event.occurred_at
    match event:
        case CaseClosed():
            _end(facts.current, at, "closed")
            facts.status = "withdrawn" if event.reason == "withdrawn" else "closed"
            facts.closed_at = at
        case CaseRejected():
            _end(facts.current, at, "rejected")
            facts.status = "rejected"
            facts.closed_at = at
        case PetitionWithdrawn():
            _end(facts.current, at, "withdrawn")
            facts.status = "withdrawn"
            facts.closed_at = facts.closed_at or at


class _Rows:
    """Counter rows keyed `scope|id|local day`; each count goes to the member and their unit."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.rows: dict[str, Counters] = {}

    def add(self, member_id: str | None, unit_id: str | None, at: datetime, **counts: int) -> None:
        day = at.astimezone(self.zone).date().isoformat()
        for scope, scope_id in (("member", member_id), ("unit", unit_id)):
            if not scope_id:
                continue
            row = self.rows.setdefault(f"{scope}|{scope_id}|{day}", {})
            for name, value in counts.items():
                if value:
                    row[name] = row.get(name, 0) + value


def contributions(facts: Facts, zone: ZoneInfo) -> dict[str, Counters]:
    """What this petition adds to each (scope, id, local day) counter row."""
    out = _Rows(zone)
    submitted = facts.submitted_at
    if submitted and facts.origin_unit_id:
        out.add(None, facts.origin_unit_id, submitted, received=1)
    for period in facts.rungs:
        out.add(period.member_id, period.unit_id, period.assigned_at, assigned=1)
        if period.outcome == "escalated" and period.ended_at is not None:
            late = int(period.on_time is False)
            out.add(
                period.member_id, period.unit_id, period.ended_at, escalated=1, escalated_late=late
            )
    if facts.first_response_at and facts.first_response_by:
        member_id, unit_id = facts.first_response_by
        seconds = _seconds_since(submitted, facts.first_response_at)
        out.add(
            member_id,
            unit_id,
            facts.first_response_at,
            responded=1,
            response_n=int(submitted is not None),
            response_s=seconds,
        )
    for r in facts.resolutions:
        seconds = _seconds_since(submitted, r.at)
        out.add(
            r.member_id,
            r.unit_id,
            r.at,
            resolved=1,
            resolved_on_time=int(r.on_time is True),
            resolution_n=int(submitted is not None),
            resolution_s=seconds,
        )
        if r.reopened_at is not None:
            out.add(r.member_id, r.unit_id, r.reopened_at, reopened=1)
    for f in facts.feedback:
        out.add(
            f.member_id,
            f.unit_id,
            f.at,
            satisfied=int(f.satisfied),
            unsatisfied=int(not f.satisfied),
        )
    return {k: v for k, v in out.rows.items() if v}


def _seconds_since(start: datetime | None, at: datetime) -> int:
    """Whole seconds from `start` (0 when unknown, never negative: events may arrive late)."""
    return max(int((at - start).total_seconds()), 0) if start else 0


def difference(old: Mapping[str, Counters], new: Mapping[str, Counters]) -> dict[str, Counters]:
    """What to add to the counters to go from `old` to `new` (negative where a count moved)."""
    delta: dict[str, Counters] = {}
    for key in set(old) | set(new):
        before, after = old.get(key, {}), new.get(key, {})
        changes = {
            name: after.get(name, 0) - before.get(name, 0)
            for name in set(before) | set(after)
            if after.get(name, 0) != before.get(name, 0)
        }
        if changes:
            delta[key] = changes
    return delta


def _insert(dialect: str, table: Table) -> Any:
    return (sqlite_insert if dialect == "sqlite" else pg_insert)(table)


def _add_counters_statement(dialect: str) -> Any:
    # Every counter, zero where unchanged: one statement shape for every row, so a whole delta
    # goes in one executemany and adding 0 leaves the other counters as they were.
    stmt = _insert(dialect, stats_daily)
    return stmt.on_conflict_do_update(
        index_elements=["scope", "scope_id", "day"],
        set_={n: stats_daily.c[n] + stmt.excluded[n] for n in STAT_COUNTERS},
    )


def _facts_row_statement(dialect: str) -> Any:
    return _insert(dialect, petition_facts).on_conflict_do_nothing(index_elements=["petition_id"])


def _lock_statement(dialect: str) -> Any:
    pf = petition_facts
    lock = select(pf.c.contributions).where(pf.c.petition_id == bindparam("pid"))
    if dialect != "sqlite":
        # One petition's events are handled one at a time; SQLite has one writer anyway.
        lock = lock.with_for_update()
    return lock


def _events_statement(_: str) -> Any:
    t = timeline
    return (
        select(t.c.event_id, t.c.subject, t.c.payload)
        .where(t.c.petition_id == bindparam("pid"))
        .order_by(t.c.occurred_at, t.c.id)
    )


def _event_ids_statement(_: str) -> Any:
    t = timeline
    return (
        select(t.c.event_id)
        .where(t.c.petition_id == bindparam("pid"))
        .order_by(t.c.occurred_at, t.c.id)
    )


def _update_facts_statement(_: str) -> Any:
    pf = petition_facts
    return (
        update(pf)
        .where(pf.c.petition_id == bindparam("pid"))
        .values({c: bindparam(c) for c in _FACT_COLUMNS})
    )


_FACT_COLUMNS = (
    "reference",
    "title",
    "origin_unit_id",
    "unit_id",
    "member_id",
    "rung",
    "status",
    "submitted_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "due_at",
    "reopen_count",
    "escalation_count",
    "satisfied",
    "rungs",
    "contributions",
    "updated_at",
)


def _counter_rows(delta: Mapping[str, Counters]) -> list[dict[str, Any]]:
    """One row per (scope, id, day), every counter present; in a fixed order, so two
    transactions never wait for each other's rows crosswise."""
    rows = []
    for key in sorted(delta):
        scope, scope_id, day = key.split("|", 2)
        changes = delta[key]
        row: dict[str, Any] = {"scope": scope, "scope_id": scope_id, "day": date.fromisoformat(day)}
        for name in STAT_COUNTERS:
            row[name] = changes.get(name, 0)
        rows.append(row)
    return rows


def _facts_values(
    facts: Facts, contributed: Mapping[str, Counters], now: datetime
) -> dict[str, Any]:
    """The `petition_facts` row of a replayed petition."""
    current = facts.current
    return {
        "pid": facts.petition_id,
        "reference": facts.reference,
        "title": facts.title,
        "origin_unit_id": facts.origin_unit_id,
        "unit_id": current.unit_id if current else None,
        "member_id": current.member_id if current else None,
        "rung": current.rung if current else None,
        "status": facts.status,
        "submitted_at": facts.submitted_at,
        "first_response_at": facts.first_response_at,
        "resolved_at": facts.resolved_at,
        "closed_at": facts.closed_at,
        "due_at": current.due_at if current else None,
        "reopen_count": facts.reopen_count,
        "escalation_count": len(facts.escalations),
        "satisfied": facts.satisfied,
        "rungs": json.dumps([p.as_json() for p in facts.rungs], ensure_ascii=False),
        "contributions": json.dumps(contributed, sort_keys=True),
        "updated_at": now,
    }


class _ParsedEvents:
    """Events already parsed in this process, by id. An event never changes, so a petition's
    replay parses only what it has not seen (each event is parsed once, not once per later
    event of its petition); bounded, oldest first out."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._events: OrderedDict[str, Event] = OrderedDict()

    def get(self, event_id: str) -> Event | None:
        return self._events.get(event_id)

    def put(self, event: Event) -> None:
        key = str(event.event_id)
        self._events[key] = event
        self._events.move_to_end(key)
        while len(self._events) > self._size:
            self._events.popitem(last=False)


class ResolutionTracker:
    """Keeps each petition's facts and its share of the counters up to date. One per app
    (`create_app`): it keeps the events it has parsed and the statements it has built."""

    def __init__(self, *, zone: ZoneInfo, remembered_events: int = 50_000) -> None:
        self.zone = zone
        self._parsed = _ParsedEvents(remembered_events)
        self._statements = Statements()

    def _statement(self, conn: AsyncConnection, name: str, build: Callable[[str], Any]) -> Any:
        return self._statements.get(conn, name, build)

    async def load_events(self, conn: AsyncConnection, petition_id: str) -> list[Event]:
        """The petition's events in the order they happened (ties in timeline order)."""
        key = {"pid": petition_id}
        ids = [
            event_id
            for (event_id,) in await conn.execute(
                self._statement(conn, "event_ids", _event_ids_statement), key
            )
        ]
        if any(self._parsed.get(event_id) is None for event_id in ids):
            stmt = self._statement(conn, "events", _events_statement)
            for event_id, subject, payload in await conn.execute(stmt, key):
                if self._parsed.get(event_id) is None:
                    self._parsed.put(parse_event(subject, payload.encode()))
        events = []
        for event_id in ids:
            event = self._parsed.get(event_id)
            assert event is not None, event_id
            events.append(event)
        return events

    async def refresh(
        self,
        conn: AsyncConnection,
        petition_id: str,
        *,
        now: datetime,
        event: Event | None = None,
    ) -> Facts:
        """Bring one petition's facts and its share of the counters up to date, in the caller's
        transaction (after its event, `event` when given, is on the timeline)."""
        if event is not None:
            self._parsed.put(event)
        previous = await self._contributed(conn, petition_id, now=now)
        facts = replay(petition_id, await self.load_events(conn, petition_id))
        contributed = contributions(facts, self.zone)
        delta = difference(previous, contributed)
        if delta:
            stmt = self._statement(conn, "add_counters", _add_counters_statement)
            await conn.execute(stmt, _counter_rows(delta))
        await conn.execute(
            self._statement(conn, "update_facts", _update_facts_statement),
            _facts_values(facts, contributed, now),
        )
        return facts

    async def _contributed(
        self, conn: AsyncConnection, petition_id: str, *, now: datetime
    ) -> dict[str, Counters]:
        """What the petition added to the counters so far, its facts row locked (and made,
        for its first event)."""
        lock = self._statement(conn, "lock", _lock_statement)
        stored = (await conn.execute(lock, {"pid": petition_id})).first()
        if stored is None:
            await conn.execute(
                self._statement(conn, "facts_row", _facts_row_statement),
                {"petition_id": petition_id, "status": "unknown", "updated_at": now},
            )
            stored = (await conn.execute(lock, {"pid": petition_id})).first()
        previous: dict[str, Counters] = json.loads(
            (stored[0] if stored is not None else None) or "{}"
        )
        return previous


def summarise_counters(totals: Mapping[str, int]) -> dict[str, Any]:
    """Counters plus the rates and averages people read."""
    resolved = totals.get("resolved", 0)
    decided = resolved + totals.get("escalated_late", 0)
    feedback = totals.get("satisfied", 0) + totals.get("unsatisfied", 0)

    def ratio(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    def average(seconds: int, count: int) -> float | None:
        return round(seconds / count, 1) if count else None

    return {
        **{name: int(totals.get(name, 0)) for name in STAT_COUNTERS},
        "resolved_late": resolved - totals.get("resolved_on_time", 0),
        "on_time_rate": ratio(totals.get("resolved_on_time", 0), decided),
        "avg_first_response_s": average(totals.get("response_s", 0), totals.get("response_n", 0)),
        "avg_resolution_s": average(totals.get("resolution_s", 0), totals.get("resolution_n", 0)),
        "satisfaction_rate": ratio(totals.get("satisfied", 0), feedback),
        "reopen_rate": ratio(totals.get("reopened", 0), resolved),
    }


async def scope_totals(
    conn: AsyncConnection, *, scope: str, scope_ids: Sequence[str], start: date, end: date
) -> dict[str, Any]:
    """The counters of these units (a unit with those below it) or members, summed over the
    local days `start`..`end` inclusive."""
    s = stats_daily
    row = (
        (
            await conn.execute(
                select(*(func.coalesce(func.sum(s.c[n]), 0).label(n) for n in STAT_COUNTERS)).where(
                    and_(
                        s.c.scope == scope,
                        s.c.scope_id.in_(list(scope_ids)),
                        s.c.day >= start,
                        s.c.day <= end,
                    )
                )
            )
        )
        .mappings()
        .one()
    )
    return summarise_counters({k: int(v) for k, v in row.items()})


async def all_scope_totals(
    conn: AsyncConnection,
    *,
    scope: str,
    start: date,
    end: date,
    only: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Every unit's (or member's) counters over the range, or those of `only`, for the
    dashboard."""
    s = stats_daily
    where = and_(s.c.scope == scope, s.c.day >= start, s.c.day <= end)
    if only is not None:
        where = and_(where, s.c.scope_id.in_(list(only)))
    rows = (
        (
            await conn.execute(
                select(
                    s.c.scope_id,
                    *(func.sum(s.c[n]).label(n) for n in STAT_COUNTERS),
                )
                .where(where)
                .group_by(s.c.scope_id)
                .order_by(s.c.scope_id)
            )
        )
        .mappings()
        .all()
    )
    return [
        {
            "id": r["scope_id"],
            "counters": {n: int(r[n] or 0) for n in STAT_COUNTERS},
            **summarise_counters({n: int(r[n] or 0) for n in STAT_COUNTERS}),
        }
        for r in rows
    ]


def petition_report(row: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """One petition's resolution facts as the API shows them."""

    def seconds(a: datetime | None, b: datetime | None) -> int | None:
        return int((b - a).total_seconds()) if a and b else None

    rungs: Sequence[dict[str, Any]] = json.loads(row["rungs"])
    shown = []
    for r in rungs:
        verdict = {True: "on_time", False: "late", None: None}[r["on_time"]]
        due = datetime.fromisoformat(r["due_at"]) if r["due_at"] else None
        if r["outcome"] == "open" and due is not None:
            verdict = "late" if now > due else "in_progress"
        shown.append({**r, "verdict": verdict})
    resolved_at = row["resolved_at"] if row["status"] in ("resolved", "closed") else None
    return {
        "petition_id": row["petition_id"],
        "reference": row["reference"],
        "status": row["status"],
        "unit_id": row["unit_id"],
        "member_id": row["member_id"],
        "rung": row["rung"],
        "submitted_at": row["submitted_at"].isoformat() if row["submitted_at"] else None,
        "time_to_first_response_s": seconds(row["submitted_at"], row["first_response_at"]),
        "time_to_resolution_s": seconds(row["submitted_at"], resolved_at),
        "reopen_count": row["reopen_count"],
        "escalation_count": row["escalation_count"],
        "satisfied": row["satisfied"],
        "rungs": shown,
    }
