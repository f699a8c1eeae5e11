"""Reading and changing cases. Every change is compare-and-set on the case's version, writes its
history and puts its events in the outbox in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing import models
from services.routing.assignment import Candidate, Choice, chain
from shared.events import CaseEvent, derived_id
from shared.messaging import add_to_outbox

PRODUCER = "routing"


class CaseConflict(Exception):
    """The case changed since it was read (another request or delivery won the race)."""

    def __init__(self, current_status: str) -> None:
        super().__init__(f"case changed concurrently; now {current_status}")
        self.current_status = current_status


@dataclass(frozen=True)
class Organisation:
    """The area tree and the people in it, as assignment needs them."""

    parents: dict[str, str | None]
    candidates: list[Candidate]
    deadlines: dict[str, list[int]]

    def ladder(self, unit_id: str) -> list[str]:
        return chain(unit_id, self.parents)

    def subtree(self, unit_id: str) -> set[str]:
        """`unit_id` and every unit below it."""
        return {u for u in self.parents if unit_id in chain(u, self.parents)}

    def member(self, member_id: str) -> Candidate | None:
        return next((c for c in self.candidates if c.member_id == member_id), None)

    def by_username(self, username: str) -> Candidate | None:
        return next((c for c in self.candidates if c.username == username), None)

    def due_at(self, category_id: str, rung: int, now: datetime) -> datetime:
        """Hours per rung from the category; a later calendar will count working time only."""
        hours = self.deadlines.get(category_id) or self.deadlines.get("other") or [72]
        return now + timedelta(hours=hours[min(rung, len(hours) - 1)])


async def load_organisation(conn: AsyncConnection) -> Organisation:
    u, m, c, k = models.units, models.members, models.categories, models.cases
    parents = {row.id: row.parent_id for row in (await conn.execute(select(u))).all()}
    deadlines = {row.id: list(row.deadline_hours) for row in (await conn.execute(select(c))).all()}
    open_counts = {
        row.holder_member_id: int(row.n)
        for row in (
            await conn.execute(
                select(k.c.holder_member_id, func.count().label("n"))
                .where(k.c.status.in_(models.OPEN_STATUSES), k.c.holder_member_id.is_not(None))
                .group_by(k.c.holder_member_id)
            )
        ).all()
    }
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
    return Organisation(parents=parents, candidates=candidates, deadlines=deadlines)


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

    event: CaseEvent
    kind: str
    actor: str | None = None
    member_id: str | None = None
    rung: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def placement_values(
    choice: Choice, org: Organisation, category_id: str, now: datetime
) -> dict[str, Any]:
    return {
        "status": "assigned",
        "rung": choice.rung,
        "holder_member_id": choice.member.member_id,
        "holder_unit_id": choice.unit_id,
        "due_at": org.due_at(category_id, choice.rung, now),
        "flag": "top_rung" if choice.outcome == "top" else None,
    }


async def record(
    conn: AsyncConnection, case_id: str, entries: Sequence[Entry], *, now: datetime
) -> None:
    """History lines and outbox rows for `entries`, in the caller's transaction."""
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
    await add_to_outbox(conn, models.messaging.outbox, *(e.event for e in entries))


async def change(
    conn: AsyncConnection,
    case: RowMapping,
    *,
    values: dict[str, Any],
    entries: Sequence[Entry],
    now: datetime,
) -> None:
    """Apply `values` if the case is still at the version read; CaseConflict otherwise."""
    k = models.cases
    result = await conn.execute(
        update(k)
        .where(and_(k.c.id == case["id"], k.c.version == case["version"]))
        .values(**values, version=case["version"] + 1, updated_at=now)
    )
    if result.rowcount != 1:
        current = await conn.scalar(select(k.c.status).where(k.c.id == case["id"]))
        raise CaseConflict(str(current))
    await record(conn, case["id"], entries, now=now)


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
