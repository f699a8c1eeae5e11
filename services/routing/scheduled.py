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
import contextlib
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
from services.routing.cases import (
    Entry,
    Organisation,
    deadline_rows,
    envelope,
    load_organisation,
    with_open_counts,
)
from services.routing.escalation import (
    OPEN_STATUSES,
    CaseView,
    DueRow,
    Planned,
    decide,
    unfold,
)
from services.routing.ladder import Duration, Ladder
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

log = structlog.get_logger(__name__)

_HOLDING = ("assigned", "accepted", "waiting_for_resident", "reopened")
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

    @property
    def changed(self) -> int:
        return (
            self.escalated
            + self.at_top
            + self.reminders
            + self.heads_up
            + self.resumed
            + self.top_daily
            + self.absences
            + self.closed
        )


class Sweep:
    """Runs passes every `interval_s` seconds (sooner when the next deadline is nearer, or when
    woken); each pass works through every due case in batches of `batch_size`."""

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
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._after_commit = after_commit
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One pass at a time per Sweep (the loop's and a caller's `run_once`): a pass that
        # started while another held cases would skip them and return before they are done.
        self._pass_lock = asyncio.Lock()
        self.passes = 0
        self.last_error: str | None = None
        # The organisation as read at the start of a pass (people, units); open-case counts are
        # read again for each batch.
        self._org: Organisation | None = None

    def wake(self) -> None:
        """Run a pass now rather than at the next tick (after an absence is set, a case moved…)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="escalation-sweep")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
                self.last_error = None
                pause = await self._until_next_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing is lost: the rows stay due and the next pass takes them again.
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("sweep_failed")
                pause = self._interval_s
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _until_next_due(self) -> float:
        d = models.deadlines
        async with self._engine.connect() as conn:
            nearest = await conn.scalar(select(func.min(d.c.due_at)).where(d.c.done_at.is_(None)))
        if nearest is None:
            return self._interval_s
        left = float((nearest - self._clock.now()).total_seconds())
        return min(self._interval_s, max(0.05, left))

    async def run_once(self) -> Totals:
        """One pass: absences that started, then every due case, batch by batch."""
        async with self._pass_lock:
            return await self._pass()

    async def _pass(self) -> Totals:
        totals = Totals()
        started = time.perf_counter()
        self._org = None
        now = self._clock.now()
        # An idle pass is two look-ups on partial indexes in one read, nothing else.
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
        if away is not None:
            await self._absences(now, totals)
        while due is not None:
            claimed = await self._batch(self._clock.now(), totals)
            if claimed:
                totals.batches += 1
                if self._after_commit is not None:
                    self._after_commit()
            if claimed < self._batch_size:
                break
        self.passes += 1
        if totals.changed:
            log.info(
                "sweep_pass",
                cases=totals.cases,
                escalated=totals.escalated,
                at_top=totals.at_top,
                reminders=totals.reminders,
                heads_up=totals.heads_up,
                resumed=totals.resumed,
                top_daily=totals.top_daily,
                absences=totals.absences,
                closed=totals.closed,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return totals

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
        d = models.deadlines
        async with self._engine.begin() as conn:
            cases = await self._claim(conn, now)
            if not cases:
                return 0
            ids = [c["id"] for c in cases]
            due: dict[str, list[DueRow]] = defaultdict(list)
            # What rides on each due row and is not due yet: the row that follows it.
            rest: dict[int, list[Planned]] = {}
            for r in (
                await conn.execute(
                    select(
                        d.c.id, d.c.case_id, d.c.kind, d.c.rung, d.c.due_at, d.c.fraction, d.c.later
                    ).where(and_(d.c.case_id.in_(ids), d.c.done_at.is_(None), d.c.due_at <= now))
                )
            ).all():
                row = DueRow(r.id, r.kind, r.rung, r.due_at, r.fraction)
                items, rest[r.id] = unfold(row, r.later, now)
                due[r.case_id].extend(items)
            if self._org is None:
                self._org = await load_organisation(conn, self._ladder, member_ids=())
            org = self._org
            units = {u for c in cases for u in org.chain(c["unit_id"])}
            org = await with_open_counts(
                conn,
                org,
                [m.member_id for m in org.candidates if m.role == "leader" and m.unit_id in units],
            )
            writes = _Writes()
            for case in cases:
                self._one(case, due.get(case["id"], []), rest, org, now, writes, totals)
            await writes.flush(conn, now)
            totals.cases += len(cases)
            totals.events += len(writes.events)
        return len(cases)

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
        if decision.close:
            writes.move(case, _quiet_close(case, now))
            totals.closed += 1
            return
        if decision.quiet_from is not None:
            closes_at = calendar.add_working(decision.quiet_from.due_at, self._quiet.span(calendar))
            if closes_at <= now:
                writes.move(case, _quiet_close(case, now))
                totals.closed += 1
            else:
                planned = [Planned("quiet_close", closes_at)]
                writes.new_rows.extend(deadline_rows(case["id"], case["rung"], planned))
            return
        if decision.escalate:
            move = escalate(case, org, now, reason="deadline_passed")
            if move is None:
                writes.move(case, at_top(case, org, now))
                totals.at_top += 1
            else:
                assert move.to_rung is not None
                assert move.assignee is not None
                writes.move(case, move)
                org.took(move.assignee, now)
                totals.escalated += 1
                key = (case["rung"], move.to_rung)
                totals.by_rung[key] = totals.by_rung.get(key, 0) + 1
            return
        if decision.resume:
            writes.move(case, resume(case, org, now, reason="max_wait"))
            totals.resumed += 1
            return
        if decision.remind is not None and case["holder_member_id"]:
            writes.notice(case, _reminder(case, decision.remind, case["holder_member_id"], now))
            totals.reminders += 1
        if decision.heads_up is not None:
            nxt = org.place(
                case["rung"] + 1, unit_id=case["unit_id"], category_id=case["category_id"], now=now
            )
            if nxt is not None and nxt.rung > case["rung"]:
                writes.notice(case, _reminder(case, decision.heads_up, nxt.member.member_id, now))
                totals.heads_up += 1
        if decision.top_daily is not None:
            entry, following = overdue_notice(case, org, now, seq=case["version"])
            writes.notice(case, entry)
            writes.new_rows.extend(deadline_rows(case["id"], case["rung"], [following]))
            totals.top_daily += 1
        if case["status"] in OPEN_STATUSES and case["status"] != "waiting_for_resident":
            # The case stays where it is: the rung's next deadline becomes its pending row.
            for row_id in dict.fromkeys(r.id for r in due if r.rung == case["rung"]):
                if row_id not in postponed:
                    writes.new_rows.extend(
                        deadline_rows(case["id"], case["rung"], rest.get(row_id, []))
                    )

    async def _absences(self, now: datetime, totals: Totals) -> None:
        """Members whose absence has started hand their open cases to the leader (or, for a
        leader, to whoever can take the rung); once per absence, marked on the member row."""
        m, k = models.members, models.cases
        started = _absence_started(now)
        async with self._engine.begin() as conn:
            query = select(m.c.id, m.c.away_from).where(started)
            if not is_sqlite(self._engine):
                query = query.with_for_update(skip_locked=True)
            away = (await conn.execute(query)).all()
            if not away:
                return
            org = await load_organisation(conn, self._ladder)
            for member in away:
                held = select(k).where(
                    and_(k.c.holder_member_id == member.id, k.c.status.in_(_HOLDING))
                )
                if not is_sqlite(self._engine):
                    held = held.with_for_update()
                for case in (await conn.execute(held)).mappings().all():
                    choice = org.place(
                        max(case["rung"], 1),
                        unit_id=case["unit_id"],
                        category_id=case["category_id"],
                        now=now,
                        exclude={member.id},
                    )
                    if choice is None:
                        log.warning("absence_no_one_to_take", case_id=case["id"])
                        continue
                    move = move_to(
                        case,
                        choice,
                        org,
                        now,
                        reason="absent",
                        escalation="nobody_available",
                    )
                    await apply(conn, case, move, now=now)
                    org.took(choice.member.member_id, now)
                    totals.absences += 1
                await conn.execute(
                    update(m)
                    .where(m.c.id == member.id)
                    .values(absence_applied_from=member.away_from)
                )
        if self._after_commit is not None:
            self._after_commit()


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
