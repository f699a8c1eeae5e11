"""Time-driven work: the sweep that escalates cases whose deadlines passed, reminds holders,
warns the next rung, resumes paused cases after the longest wait, tells leadership daily about
cases overdue at the top, and hands an absent member's cases to their leader.

Exactly once, whatever the replicas, restarts or redeliveries: the deadline rows in the
database are the truth. A pass claims the cases that have due rows, locking the case rows
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas share the work without waiting on each
other; SQLite has one writer at a time, `BEGIN IMMEDIATE`), decides from fresh data, and in the
same transaction changes the cases, finishes the rows, plans the next ones and writes the events
to the outbox. A crash rolls all of it back; the next pass, here or in another replica, does it
again. Everyone else who changes a case (the staff API, the event handlers) updates the case row
first, so a resolution either commits before the sweep reads the case (nothing escalates) or
waits for the sweep and then finds the case moved (409).

The pass reads only deadline rows that are due (a partial index on `due_at` of pending rows), so
its cost follows the number of due cases, not the number of open ones.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, event, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.routing import models
from services.routing.calendar import WorkingCalendar
from services.routing.cases import (
    Entry,
    Organisation,
    deadline_rows,
    envelope,
    load_organisation,
    with_open_counts,
)
from services.routing.escalation import (
    CaseView,
    Decision,
    DueRow,
    Planned,
    decide,
    unfold,
)
from services.routing.ladder import Duration, Ladder
from services.routing.lifecycle import CLOCK_RUNS, HELD
from services.routing.transitions import (
    Move,
    apply,
    at_top,
    escalate,
    move_to,
    overdue_notice,
    resume,
)
from shared.clock import Clock
from shared.db import is_sqlite
from shared.events import CaseClosed, CaseReminderDue, derived_id
from shared.messaging import add_to_outbox
from shared.worker import Worker

log = structlog.get_logger(__name__)

SQLITE_CACHE_KIB = 128 * 1024
SQLITE_MMAP_BYTES = 2 * 1024**3
SQLITE_CHECKPOINT_PAGES = 20_000


@dataclass
class Totals:
    """What one sweep pass did."""

    cases: int = 0
    escalated: int = 0
    at_top: int = 0
    reminders: int = 0
    heads_up: int = 0
    resumed: int = 0
    top_daily: int = 0
    absences: int = 0
    closed: int = 0
    batches: int = 0
    # Events written to the outbox.
    events: int = 0
    by_rung: dict[tuple[int, int], int] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        """What changed, by kind (for the pass's log line)."""
        return {
            "cases": self.cases,
            "escalated": self.escalated,
            "at_top": self.at_top,
            "reminders": self.reminders,
            "heads_up": self.heads_up,
            "resumed": self.resumed,
            "top_daily": self.top_daily,
            "absences": self.absences,
            "closed": self.closed,
        }

    @property
    def changed(self) -> int:
        return sum(v for k, v in self.summary().items() if k != "cases")


class Sweep:
    """Runs passes every `interval_s` seconds (sooner when the next deadline is nearer, or when
    woken); each pass works through every due case in batches of `batch_size`. The loop is a
    `shared.worker.Worker`: a wake that arrives during a pass gets a pass of its own."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        ladder: Ladder,
        clock: Clock,
        interval_s: float = 5.0,
        batch_size: int = 500,
        after_commit: Callable[[], None] | None = None,
        quiet_close_days: float = 7.0,
    ) -> None:
        self._engine = engine
        # A resolved case the resident says nothing about is closed after this many working days.
        self._quiet = Duration(quiet_close_days, "d")
        self._ladder = ladder
        self._clock = clock
        self._batch_size = batch_size
        self._after_commit = after_commit or (lambda: None)
        # One pass at a time per Sweep (the loop's and a caller's `run_once`): a pass that
        # started while another held cases would skip them and return before they are done.
        self._pass_lock = asyncio.Lock()
        # The organisation as read at the start of a pass (people, units); open-case counts are
        # read again for each batch.
        self._org: Organisation | None = None
        # Nothing is lost when a pass fails: the rows stay due and the next pass takes them.
        self._worker = Worker(
            "escalation-sweep", self._step, idle_s=interval_s, next_due=self._until_next_due
        )

    def wake(self) -> None:
        """Run a pass now rather than at the next tick (after an absence is set, a case moved…)."""
        self._worker.wake()

    @property
    def running(self) -> bool:
        return self._worker.running

    def start(self) -> None:
        self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    async def _step(self) -> bool:
        # A pass already works through every due batch: nothing more is waiting after it.
        await self.run_once()
        return False

    async def _until_next_due(self) -> float | None:
        """Seconds until the nearest pending deadline (None: nothing pending)."""
        d = models.deadlines
        async with self._engine.connect() as conn:
            nearest = await conn.scalar(select(func.min(d.c.due_at)).where(d.c.done_at.is_(None)))
        if nearest is None:
            return None
        return float((nearest - self._clock.now()).total_seconds())

    async def run_once(self) -> Totals:
        """One pass: absences that started, then every due case, batch by batch."""
        async with self._pass_lock:
            return await self._pass()

    async def _pass(self) -> Totals:
        totals = Totals()
        started = time.perf_counter()
        self._org = None
        now = self._clock.now()
        due, away = await self._anything_to_do(now)
        if away:
            await self._absences(now, totals)
        while due:
            claimed = await self._batch(self._clock.now(), totals)
            if claimed:
                totals.batches += 1
                self._after_commit()
            if claimed < self._batch_size:
                break
        if totals.changed:
            log.info(
                "sweep_pass",
                **totals.summary(),
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return totals

    async def _anything_to_do(self, now: datetime) -> tuple[bool, bool]:
        """Whether any deadline is due, and whether any absence began: an idle pass is these
        two look-ups on partial indexes in one read, nothing else."""
        d, m = models.deadlines, models.members
        async with self._engine.connect() as conn:
            # Ordered by due_at, so the planner walks the due index and stops at the first row.
            due = await conn.scalar(
                select(d.c.id)
                .where(and_(d.c.done_at.is_(None), d.c.due_at <= now))
                .order_by(d.c.due_at)
                .limit(1)
            )
            away = await conn.scalar(select(m.c.id).where(_absence_started(now)).limit(1))
        return due is not None, away is not None

    async def _claim(self, conn: AsyncConnection, now: datetime) -> Sequence[RowMapping]:
        d, k = models.deadlines, models.cases
        # A window a few batches wide, so replicas that skip each other's locked cases still
        # find work of their own in it.
        due = (
            select(d.c.case_id)
            .where(and_(d.c.done_at.is_(None), d.c.due_at <= now))
            .order_by(d.c.due_at)
            .limit(self._batch_size * 4)
        )
        query = select(k).where(k.c.id.in_(due)).limit(self._batch_size)
        if not is_sqlite(self._engine):
            query = query.with_for_update(skip_locked=True, of=k)
        return (await conn.execute(query)).mappings().all()

    async def _batch(self, now: datetime, totals: Totals) -> int:
        async with self._engine.begin() as conn:
            cases = await self._claim(conn, now)
            if not cases:
                return 0
            due, rest = await _due_rows(conn, [c["id"] for c in cases], now)
            org = await self._batch_organisation(conn, cases)
            writes = _Writes()
            for case in cases:
                self._one(case, due.get(case["id"], []), rest, org, now, writes, totals)
            await writes.flush(conn, now)
            totals.cases += len(cases)
            totals.events += len(writes.events)
        return len(cases)

    async def _batch_organisation(
        self, conn: AsyncConnection, cases: Sequence[RowMapping]
    ) -> Organisation:
        """The pass's organisation, with the open cases of the leaders a batch may hand cases
        to counted afresh (members' counts matter only to new petitions)."""
        if self._org is None:
            self._org = await load_organisation(conn, self._ladder, member_ids=())
        org = self._org
        units = {u for c in cases for u in org.chain(c["unit_id"])}
        leaders = [m.member_id for m in org.candidates if m.role == "leader" and m.unit_id in units]
        return await with_open_counts(conn, org, leaders)

    def _one(
        self,
        case: RowMapping,
        due: list[DueRow],
        rest: dict[int, list[Planned]],
        org: Organisation,
        now: datetime,
        writes: _Writes,
        totals: Totals,
    ) -> None:
        """What the due rows of one case mean for it, added to the batch's writes."""
        calendar = org.calendar(case["unit_id"])
        decision = decide(
            CaseView(case["status"], case["rung"], case["flag"]),
            due,
            in_office_hours=calendar.in_office_hours(now),
        )
        # A postponed row keeps what rides on it; it comes round again at the opening.
        postponed = set(decision.postpone)
        writes.done.extend(i for i in dict.fromkeys(decision.done) if i not in postponed)
        if postponed:
            opening = calendar.next_office_time(now)
            writes.postpone.extend((i, opening) for i in sorted(postponed))
        if decision.close or decision.quiet_from is not None:
            self._quiet_period(case, decision, calendar, now, writes, totals)
        elif decision.escalate:
            _escalate(case, org, now, writes, totals)
        elif decision.resume:
            writes.move(case, resume(case, org, now, reason="max_wait"))
            totals.resumed += 1
        else:
            _notices(case, decision, org, now, writes, totals)
            _plant_next(case, due, rest, postponed, writes)

    def _quiet_period(
        self,
        case: RowMapping,
        decision: Decision,
        calendar: WorkingCalendar,
        now: datetime,
        writes: _Writes,
        totals: Totals,
    ) -> None:
        """A resolved case: close it once the quiet period has passed, else plan the close."""
        if decision.quiet_from is not None:
            closes_at = calendar.add_working(decision.quiet_from.due_at, self._quiet.span(calendar))
            if closes_at > now:
                planned = [Planned("quiet_close", closes_at)]
                writes.new_rows.extend(deadline_rows(case["id"], case["rung"], planned))
                return
        writes.move(case, _quiet_close(case, now))
        totals.closed += 1

    async def _absences(self, now: datetime, totals: Totals) -> None:
        """Members whose absence has started hand their open cases to whoever holds them next
        (`assignment.next_search`: the leader); once per absence, marked on the member row."""
        m = models.members
        async with self._engine.begin() as conn:
            query = select(m.c.id, m.c.away_from).where(_absence_started(now))
            if not is_sqlite(self._engine):
                query = query.with_for_update(skip_locked=True)
            away = (await conn.execute(query)).all()
            if not away:
                return
            org = await load_organisation(conn, self._ladder)
            for member in away:
                totals.absences += await self._hand_over(conn, org, member.id, now)
                await conn.execute(
                    update(m)
                    .where(m.c.id == member.id)
                    .values(absence_applied_from=member.away_from)
                )
        self._after_commit()

    async def _hand_over(
        self, conn: AsyncConnection, org: Organisation, member_id: str, now: datetime
    ) -> int:
        """Hand an absent member's held cases on; how many moved."""
        k = models.cases
        held = select(k).where(
            and_(k.c.holder_member_id == member_id, k.c.status.in_(sorted(HELD)))
        )
        if not is_sqlite(self._engine):
            held = held.with_for_update()
        moved = 0
        for case in (await conn.execute(held)).mappings().all():
            choice = org.next_holder(
                "absent",
                rung=case["rung"],
                unit_id=case["unit_id"],
                category_id=case["category_id"],
                now=now,
                leaving=member_id,
            )
            if choice is None:
                log.warning("absence_no_one_to_take", case_id=case["id"])
                continue
            move = move_to(case, choice, org, now, reason="absent", escalation="nobody_available")
            await apply(conn, case, move, now=now)
            org.took(choice.member.member_id, now)
            moved += 1
        return moved


async def _due_rows(
    conn: AsyncConnection, case_ids: list[str], now: datetime
) -> tuple[dict[str, list[DueRow]], dict[int, list[Planned]]]:
    """The due deadline rows of the claimed cases (with those riding on them that are due too),
    by case; and, by row, what rides on it and is not due yet: the row that follows it."""
    d = models.deadlines
    due: dict[str, list[DueRow]] = defaultdict(list)
    rest: dict[int, list[Planned]] = {}
    query = select(
        d.c.id, d.c.case_id, d.c.kind, d.c.rung, d.c.due_at, d.c.fraction, d.c.later
    ).where(and_(d.c.case_id.in_(case_ids), d.c.done_at.is_(None), d.c.due_at <= now))
    for r in (await conn.execute(query)).all():
        row = DueRow(r.id, r.kind, r.rung, r.due_at, r.fraction)
        items, rest[r.id] = unfold(row, r.later, now)
        due[r.case_id].extend(items)
    return due, rest


def _escalate(
    case: RowMapping, org: Organisation, now: datetime, writes: _Writes, totals: Totals
) -> None:
    """A passed deadline: one rung up, or (nowhere higher) flagged overdue at the top."""
    move = escalate(case, org, now, reason="deadline_passed")
    if move is None:
        writes.move(case, at_top(case, org, now))
        totals.at_top += 1
        return
    assert move.to_rung is not None
    assert move.assignee is not None
    writes.move(case, move)
    org.took(move.assignee, now)
    totals.escalated += 1
    key = (case["rung"], move.to_rung)
    totals.by_rung[key] = totals.by_rung.get(key, 0) + 1


def _notices(
    case: RowMapping,
    decision: Decision,
    org: Organisation,
    now: datetime,
    writes: _Writes,
    totals: Totals,
) -> None:
    """Reminders to the holder, the heads-up to whoever holds the case next if it escalates,
    and the day's notice to leadership of a case overdue at the top."""
    if decision.remind is not None and case["holder_member_id"]:
        writes.notice(case, _reminder(case, decision.remind, case["holder_member_id"], now))
        totals.reminders += 1
    if decision.heads_up is not None:
        nxt = org.next_holder(
            "next_rung",
            rung=case["rung"],
            unit_id=case["unit_id"],
            category_id=case["category_id"],
            now=now,
        )
        if nxt is not None:
            writes.notice(case, _reminder(case, decision.heads_up, nxt.member.member_id, now))
            totals.heads_up += 1
    if decision.top_daily is not None:
        entry, following = overdue_notice(case, org, now, seq=case["version"])
        writes.notice(case, entry)
        writes.new_rows.extend(deadline_rows(case["id"], case["rung"], [following]))
        totals.top_daily += 1


def _plant_next(
    case: RowMapping,
    due: list[DueRow],
    rest: dict[int, list[Planned]],
    postponed: set[int],
    writes: _Writes,
) -> None:
    """The case stays where it is: the rung's next deadline becomes its pending row (not while
    the clock is stopped, nor for a row postponed to the next opening, which keeps its own)."""
    if case["status"] not in CLOCK_RUNS:
        return
    for row_id in dict.fromkeys(r.id for r in due if r.rung == case["rung"]):
        if row_id not in postponed:
            writes.new_rows.extend(deadline_rows(case["id"], case["rung"], rest.get(row_id, [])))


def tune_sqlite(engine: AsyncEngine) -> None:
    """Give routing's SQLite connections a page cache and memory map sized for a large file.

    SQLite's default cache is 2 MB; with a million open cases the sweep's look-ups by case id
    land all over the file and would each cost a read from the operating system. A sweep rewrites
    the same index pages batch after batch, so checkpointing the WAL less often writes each back
    once instead of many times.
    """
    if not is_sqlite(engine):
        return

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
        cursor.close()


def _absence_started(now: datetime) -> Any:
    """Members whose absence has begun and whose cases were not yet handed over for it."""
    m = models.members
    return and_(
        m.c.away_from.is_not(None),
        m.c.away_from <= now,
        or_(m.c.away_until.is_(None), m.c.away_until > now),
        or_(m.c.absence_applied_from.is_(None), m.c.absence_applied_from != m.c.away_from),
    )


def _reminder(case: RowMapping, row: DueRow, member_id: str, now: datetime) -> Entry:
    kind = "holder" if row.kind == "reminder" else "next_rung"
    event = CaseReminderDue(
        **{
            **envelope(
                case,
                kind="reminder",
                rung=case["rung"],
                seq=case["version"],
                now=now,
                causation_id=None,
            ),
            # One reminder per deadline, whatever pass or replica sends it.
            "event_id": (
                derived_id(case["id"], "deadline", row.id, row.key)
                if row.key
                else derived_id(case["id"], "deadline", row.id)
            ),
        },
        member_id=member_id,
        rung=case["rung"],
        kind=kind,
        fraction=row.fraction if row.fraction is not None else 1.0,
        due_at=case["due_at"] or now,
    )
    return Entry(
        event,
        "reminder" if kind == "holder" else "heads_up",
        member_id=member_id,
        rung=case["rung"],
        detail={"fraction": row.fraction},
    )


def _quiet_close(case: RowMapping, now: datetime) -> Move:
    """The quiet period after "resolved" passed without a word from the resident."""
    event = CaseClosed(
        **envelope(
            case,
            kind="closed",
            rung=case["rung"],
            seq=case["version"] + 1,
            now=now,
            causation_id=None,
        ),
        reason="quiet_period",
    )
    return Move(
        values={"status": "closed", "closed_at": now, "due_at": None, "flag": None},
        entries=[Entry(event, "closed", rung=case["rung"], detail={"reason": "quiet_period"})],
    )


@dataclass
class _Writes:
    """A batch's changes, written with a handful of statements rather than several per case."""

    done: list[int] = field(default_factory=list)
    postpone: list[tuple[int, datetime]] = field(default_factory=list)
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    updates: dict[frozenset[str], list[dict[str, Any]]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)

    def move(self, case: RowMapping, move: Move) -> None:
        values = {**move.values, "version": case["version"] + 1}
        key = frozenset(values)
        self.updates.setdefault(key, []).append(
            {
                "b_id": case["id"],
                "b_version": case["version"],
                **{f"v_{k}": v for k, v in values.items()},
            }
        )
        if move.cancel == "all":
            self.moved.append(case["id"])
        rung = move.values.get("rung", case["rung"])
        self.new_rows.extend(deadline_rows(case["id"], rung, move.schedule))
        for entry in move.entries:
            self.entry(case["id"], entry)
        if move.assignee is not None:
            self.touched.add(move.assignee)

    def notice(self, case: RowMapping, entry: Entry) -> None:
        self.entry(case["id"], entry)

    def entry(self, case_id: str, entry: Entry) -> None:
        self.history.append(
            {
                "case_id": case_id,
                "event_id": str(entry.event.event_id),
                "kind": entry.kind,
                "at": None,
                "actor": entry.actor,
                "member_id": entry.member_id,
                "rung": entry.rung,
                "detail": entry.detail,
            }
        )
        self.events.append(entry.event)

    async def flush(self, conn: AsyncConnection, now: datetime) -> None:
        d, k, m = models.deadlines, models.cases, models.members
        if self.done:
            await conn.execute(update(d).where(d.c.id.in_(self.done)).values(done_at=now))
        for row_id, at in self.postpone:
            await conn.execute(update(d).where(d.c.id == row_id).values(due_at=at))
        if self.moved:
            await conn.execute(
                update(d)
                .where(and_(d.c.case_id.in_(self.moved), d.c.done_at.is_(None)))
                .values(done_at=now)
            )
        for key, rows in self.updates.items():
            columns: dict[str, Any] = {c: bindparam(f"v_{c}") for c in sorted(key)}
            # Compare-and-set as everywhere; the case rows are locked, so it cannot miss.
            await conn.execute(
                update(k)
                .where(and_(k.c.id == bindparam("b_id"), k.c.version == bindparam("b_version")))
                .values(**columns, updated_at=now),
                rows,
            )
        if self.new_rows:
            await conn.execute(insert(d), self.new_rows)
        if self.history:
            await conn.execute(
                insert(models.case_history), [{**h, "at": now} for h in self.history]
            )
            await add_to_outbox(conn, models.messaging.outbox, *self.events)
        if self.touched:
            await conn.execute(
                update(m).where(m.c.id.in_(sorted(self.touched))).values(last_assigned_at=now)
            )
