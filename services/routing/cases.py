"""Reading and changing cases. Every change is compare-and-set on the case's version, writes its
history and puts its events in the outbox in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing import models
from services.routing.assignment import (
    Candidate,
    Choice,
    RungHolder,
    Trigger,
    chain,
    next_search,
    place,
    rung_of,
    top_rung,
)
from services.routing.calendar import WorkingCalendar
from services.routing.escalation import Plan, Planned, plan_rung
from services.routing.ladder import Ladder, Rung
from services.routing.lifecycle import OPEN
from shared.events import CaseEvent, Event, derived_id
from shared.messaging import add_to_outbox

PRODUCER = "routing"


class CaseConflict(Exception):
    """The case changed since it was read (another request or delivery won the race)."""

    def __init__(self, current_status: str) -> None:
        super().__init__(f"case changed concurrently; now {current_status}")
        self.current_status = current_status


@dataclass(frozen=True)
class Organisation:
    """The area tree, the people in it and the ladder, as assignment and deadlines need them."""

    parents: dict[str, str | None]
    candidates: list[Candidate]
    ladder: Ladder
    # Look-ups built on first use: a sweep places thousands of cases against one organisation.
    _chains: dict[str, list[str]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    _by_unit: dict[str, list[int]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    _index: dict[str, int] = field(default_factory=dict, init=False, compare=False, repr=False)

    def chain(self, unit_id: str) -> list[str]:
        """The unit and its ancestors, nearest first."""
        found = self._chains.get(unit_id)
        if found is None:
            found = self._chains[unit_id] = chain(unit_id, self.parents)
        return found

    def subtree(self, unit_id: str) -> set[str]:
        """`unit_id` and every unit below it."""
        return {u for u in self.parents if unit_id in self.chain(u)}

    def _indexes(self) -> dict[str, int]:
        if not self._index and self.candidates:
            for i, c in enumerate(self.candidates):
                self._index[c.member_id] = i
                self._by_unit.setdefault(c.unit_id, []).append(i)
        return self._index

    def member(self, member_id: str) -> Candidate | None:
        i = self._indexes().get(member_id)
        return None if i is None else self.candidates[i]

    def by_username(self, username: str) -> Candidate | None:
        return next((c for c in self.candidates if c.username == username), None)

    def serving(self, units: Collection[str]) -> list[Candidate]:
        """The people of `units`."""
        self._indexes()
        return [self.candidates[i] for u in units for i in self._by_unit.get(u, ())]

    def holders(self, unit_id: str, category_id: str) -> list[RungHolder]:
        return self.ladder.holders(self.chain(unit_id), category_id)

    def place(
        self,
        rung: int,
        *,
        unit_id: str,
        category_id: str,
        now: datetime,
        exclude: Collection[str] = (),
    ) -> Choice | None:
        """Who takes a case of this unit and category at `rung` (or above, or at the top),
        leaving out the members in `exclude`."""
        units = self.chain(unit_id)
        candidates = [c for c in self.serving(units) if c.member_id not in exclude]
        return place(
            rung,
            units=units,
            candidates=candidates,
            category_id=category_id,
            now=now,
            holders=self.holders(unit_id, category_id),
        )

    def next_holder(
        self,
        trigger: Trigger,
        *,
        rung: int,
        unit_id: str,
        category_id: str,
        now: datetime,
        leaving: str | None = None,
        decliners: Sequence[str] = (),
    ) -> Choice | None:
        """Who holds a case of this unit and category next, moving from `rung` for `trigger`
        (see `assignment.next_search`); None when nobody can."""
        search = next_search(
            trigger,
            rung=rung,
            leaving=leaving,
            decliners=decliners,
            declines_before_leader=self.ladder.policy.declines_before_leader,
        )
        choice = self.place(
            search.rung, unit_id=unit_id, category_id=category_id, now=now, exclude=search.exclude
        )
        if choice is None or (search.climb and choice.rung <= rung):
            return None
        return choice

    def top_rung(self, unit_id: str, category_id: str) -> int:
        return top_rung(self.chain(unit_id), self.holders(unit_id, category_id))

    def rung_of(self, member: Candidate, unit_id: str, category_id: str) -> int | None:
        return rung_of(member, self.chain(unit_id), self.holders(unit_id, category_id))

    def took(self, member_id: str, now: datetime) -> None:
        """Count a case just handed to `member_id`, so the next choice in the same pass sees it."""
        i = self._indexes().get(member_id)
        if i is not None:
            c = self.candidates[i]
            self.candidates[i] = replace(c, open_cases=c.open_cases + 1, last_assigned_at=now)

    def leaders_of(self, unit_id: str) -> list[Candidate]:
        return [c for c in self.serving([unit_id]) if c.role == "leader"]

    def calendar(self, unit_id: str) -> WorkingCalendar:
        return self.ladder.calendar_for(self.chain(unit_id))

    def rung_spec(self, unit_id: str, category_id: str, rung: int) -> Rung:
        rungs = self.ladder.rungs(self.chain(unit_id), category_id)
        return rungs[min(rung, len(rungs) - 1)]

    def plan(
        self,
        *,
        unit_id: str,
        category_id: str,
        rung: int,
        start: datetime,
        remaining: timedelta | None = None,
        acknowledged: bool = False,
    ) -> Plan:
        """Deadlines for a case placed at `rung` at `start`, in the unit's working time."""
        return plan_rung(
            self.calendar(unit_id),
            self.rung_spec(unit_id, category_id, rung),
            self.ladder.policy,
            start,
            remaining=remaining,
            acknowledged=acknowledged,
            has_next=rung < self.top_rung(unit_id, category_id),
        )


async def with_open_counts(
    conn: AsyncConnection, org: Organisation, member_ids: Collection[str]
) -> Organisation:
    """`org` with the open cases of `member_ids` counted (the others' counts left as they are)."""
    if not member_ids:
        return org
    k = models.cases
    counts = {
        row.holder_member_id: int(row.n)
        for row in (
            await conn.execute(
                select(k.c.holder_member_id, func.count().label("n"))
                .where(
                    k.c.holder_member_id.in_(list(member_ids)),
                    k.c.status.in_(sorted(OPEN)),
                )
                .group_by(k.c.holder_member_id)
            )
        ).all()
    }
    wanted = set(member_ids)
    candidates = [
        replace(c, open_cases=counts.get(c.member_id, 0)) if c.member_id in wanted else c
        for c in org.candidates
    ]
    return replace(org, candidates=candidates)


async def load_organisation(
    conn: AsyncConnection, ladder: Ladder, *, member_ids: Collection[str] | None = None
) -> Organisation:
    """The organisation with each member's open cases counted (all members, or only those in
    `member_ids`: the sweep counts just the people it may hand cases to)."""
    u, m, k = models.units, models.members, models.cases
    parents = {row.id: row.parent_id for row in (await conn.execute(select(u))).all()}
    counting = (
        select(k.c.holder_member_id, func.count().label("n"))
        .where(k.c.status.in_(sorted(OPEN)), k.c.holder_member_id.is_not(None))
        .group_by(k.c.holder_member_id)
    )
    if member_ids is not None:
        counting = counting.where(k.c.holder_member_id.in_(list(member_ids)))
    open_counts = (
        {row.holder_member_id: int(row.n) for row in (await conn.execute(counting)).all()}
        if member_ids is None or member_ids
        else {}
    )
    candidates = [
        Candidate(
            member_id=row.id,
            username=row.username,
            name=row.name,
            email=row.email,
            unit_id=row.unit_id,
            role=row.role,
            categories=frozenset(row.categories),
            capacity=row.capacity,
            open_cases=open_counts.get(row.id, 0),
            active=row.active,
            away_from=row.away_from,
            away_until=row.away_until,
            last_assigned_at=row.last_assigned_at,
        )
        for row in (await conn.execute(select(m).order_by(m.c.username))).all()
    ]
    return Organisation(parents=parents, candidates=candidates, ladder=ladder)


async def get_case(conn: AsyncConnection, case_id: str) -> RowMapping | None:
    k = models.cases
    return (await conn.execute(select(k).where(k.c.id == case_id))).mappings().first()


async def get_case_by_petition(conn: AsyncConnection, petition_id: str) -> RowMapping | None:
    k = models.cases
    return (await conn.execute(select(k).where(k.c.petition_id == petition_id))).mappings().first()


def case_id_for(petition_id: uuid.UUID) -> uuid.UUID:
    """One case per petition, with an id any replica derives the same way."""
    return derived_id(petition_id, "case")


def envelope(
    case: RowMapping | dict[str, Any],
    *,
    kind: str,
    rung: int,
    seq: int,
    now: datetime,
    causation_id: uuid.UUID | None,
) -> dict[str, Any]:
    """The common fields of an event about `case`; the id is derived from the case, the rung,
    the transition and the case version it produces, so a replay gives the same id."""
    return {
        "event_id": derived_id(case["id"], rung, kind, seq),
        "occurred_at": now,
        "petition_id": uuid.UUID(case["petition_id"]),
        "producer": PRODUCER,
        "correlation_id": uuid.UUID(case["correlation_id"]),
        "causation_id": causation_id,
        "case_id": uuid.UUID(case["id"]),
    }


@dataclass
class Entry:
    """One event with the history line it leaves."""

    event: CaseEvent | Event
    kind: str
    actor: str | None = None
    member_id: str | None = None
    rung: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def placement_values(choice: Choice, plan: Plan) -> dict[str, Any]:
    """The case's columns once it rests with `choice`'s member under `plan`'s deadlines."""
    return {
        "status": "assigned",
        "rung": choice.rung,
        "holder_member_id": choice.member.member_id,
        "holder_unit_id": choice.unit_id,
        "due_at": plan.due_at,
        "ack_due_at": plan.ack_due_at,
        "question_id": None,
        "paused_remaining_s": None,
        "flag": "top_rung" if choice.outcome == "top" else None,
    }


async def record_history(
    conn: AsyncConnection, case_id: str, entries: Sequence[Entry], *, now: datetime
) -> None:
    """History lines for `entries` only: for events other services published (the resident's)."""
    if not entries:
        return
    await conn.execute(
        insert(models.case_history),
        [
            {
                "case_id": case_id,
                "event_id": str(e.event.event_id),
                "kind": e.kind,
                "at": now,
                "actor": e.actor,
                "member_id": e.member_id,
                "rung": e.rung,
                "detail": e.detail,
            }
            for e in entries
        ],
    )


async def record(
    conn: AsyncConnection, case_id: str, entries: Sequence[Entry], *, now: datetime
) -> None:
    """History lines and outbox rows for `entries`, in the caller's transaction."""
    if not entries:
        return
    await record_history(conn, case_id, entries, now=now)
    await add_to_outbox(conn, models.messaging.outbox, *(e.event for e in entries))


async def change(
    conn: AsyncConnection,
    case: RowMapping,
    *,
    values: dict[str, Any],
    entries: Sequence[Entry],
    now: datetime,
    cancel: Literal["all", "ack"] | None = None,
    schedule: Sequence[Planned] = (),
) -> None:
    """Apply `values` if the case is still at the version read; CaseConflict otherwise.

    `cancel` finishes the case's pending deadlines (all, or the acknowledgement only) and
    `schedule` adds new ones. The case row is updated first: its lock is what guards its
    deadline rows against the sweep, which takes the same locks in the same order.
    """
    k = models.cases
    result = await conn.execute(
        update(k)
        .where(and_(k.c.id == case["id"], k.c.version == case["version"]))
        .values(**values, version=case["version"] + 1, updated_at=now)
    )
    if result.rowcount != 1:
        current = await conn.scalar(select(k.c.status).where(k.c.id == case["id"]))
        raise CaseConflict(str(current))
    if cancel is not None:
        await cancel_deadlines(conn, [case["id"]], now=now, kind="ack" if cancel == "ack" else None)
    if values.get("status") == "resolved":
        # The quiet period starts now: the sweep plans the close in the unit's working days.
        schedule = (*schedule, Planned("resolved", now))
    await add_deadlines(
        conn, case["id"], case["rung"] if "rung" not in values else values["rung"], schedule
    )
    await record(conn, case["id"], entries, now=now)


async def cancel_deadlines(
    conn: AsyncConnection, case_ids: Collection[str], *, now: datetime, kind: str | None = None
) -> None:
    """Finish the pending deadlines of `case_ids` (all of them; "ack" finishes none: the
    acknowledgement travels in the rung's chain of deadlines with the later ones, and the sweep
    passes over it once the case is accepted)."""
    if not case_ids or kind == "ack":
        return
    d = models.deadlines
    condition = and_(d.c.case_id.in_(list(case_ids)), d.c.done_at.is_(None))
    if kind is not None:
        condition = and_(condition, d.c.kind == kind)
    await conn.execute(update(d).where(condition).values(done_at=now))


def deadline_rows(case_id: str, rung: int, planned: Sequence[Planned]) -> list[dict[str, Any]]:
    """One pending row for a rung's deadlines: the first to come is the row (`due_at`, in the
    due index), the others ride on it in `later`; the sweep plants the next when it fires."""
    if not planned:
        return []
    first, *rest = sorted(planned, key=lambda p: p.due_at)
    return [
        {
            "case_id": case_id,
            "rung": rung,
            "kind": first.kind,
            "due_at": first.due_at,
            "fraction": first.fraction,
            "done_at": None,
            "later": [p.as_json() for p in rest] or None,
        }
    ]


async def add_deadlines(
    conn: AsyncConnection, case_id: str, rung: int, planned: Sequence[Planned]
) -> None:
    if planned:
        await conn.execute(insert(models.deadlines), deadline_rows(case_id, rung, planned))


async def touch_member(conn: AsyncConnection, member_id: str, now: datetime) -> None:
    m = models.members
    await conn.execute(update(m).where(m.c.id == member_id).values(last_assigned_at=now))


async def history(conn: AsyncConnection, case_id: str) -> list[dict[str, Any]]:
    h = models.case_history
    rows = (
        (await conn.execute(select(h).where(h.c.case_id == case_id).order_by(h.c.id)))
        .mappings()
        .all()
    )
    return [
        {
            "event_id": r["event_id"],
            "kind": r["kind"],
            "at": r["at"],
            "actor": r["actor"],
            "member_id": r["member_id"],
            "rung": r["rung"],
            "detail": r["detail"],
        }
        for r in rows
    ]


async def past_holders(conn: AsyncConnection, case_id: str) -> set[str]:
    h = models.case_history
    rows = await conn.scalars(
        select(h.c.member_id).where(
            and_(h.c.case_id == case_id, h.c.kind == "assigned", h.c.member_id.is_not(None))
        )
    )
    return {str(r) for r in rows.all()}
