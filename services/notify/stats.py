"""Resolution tracking in the database: each petition's facts (`facts.py`: time to first
response, time to resolution, on time or late at each rung, reopen count, the resident's
satisfaction) and what they add to the per-day counters of each unit and member.

Events of one petition arrive on separate consumers and may come in any order, so a petition's
facts are replayed from its timeline (a handful of rows) in the handler's transaction, and only
the difference between what the petition now contributes and what it contributed before is
added to `stats_daily`. Queries sum a date range of those counters: never a scan of petitions.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import (
    Event,
    parse_event,
)

from .facts import (
    Counters,
    Facts,
    contributions,
    difference,
    replay,
)
from .models import STAT_COUNTERS, petition_facts, stats_daily, timeline
from .statements import Statements


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
    """Events already parsed in this process, by id. An event changes only when its petition
    is redacted (`ResolutionTracker.forget`), so a petition's replay parses only what it has
    not seen (each event is parsed once, not once per later
    event of its petition); bounded, oldest first out."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._events: OrderedDict[str, Event] = OrderedDict()

    def get(self, event_id: str) -> Event | None:
        return self._events.get(event_id)

    def discard(self, event_id: str) -> None:
        self._events.pop(event_id, None)

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

    async def forget(self, conn: AsyncConnection, petition_id: str) -> None:
        """Parse the petition's events afresh next time: they were redacted (an event
        changes only then, perhaps in another replica)."""
        key = {"pid": petition_id}
        stmt = self._statement(conn, "event_ids", _event_ids_statement)
        for (event_id,) in await conn.execute(stmt, key):
            self._parsed.discard(event_id)

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
