"""Who may see a petition's data in notify (timeline, delivery log, statistics, dashboard,
digests): `shared.scope`, the rule routing owns and every service asks, applied to what notify
knows of each petition.

Notify keeps, per petition, the facts the rule needs (`petition_access`, filled by the event
handlers in the same transaction as the timeline): its own unit, the resident's ("unit" row,
from the submission) and every member who held it ("member" rows: each assignment's member,
each escalation's former holder). A leader leads the petition when its unit is within their
reach (`Staff.units`, the leader's unit and those below it, from routing's tree at sign-in),
which is routing's "their unit is on the petition's chain". One petition is decided by
`scope.may_see` itself; lists are filtered by `visible_petitions`, its translation into SQL
over the same rows. For anyone the rule refuses the answer is "not found": that a petition
exists is itself not for everyone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared import scope
from shared.auth import Staff
from shared.events import CaseAssigned, CaseEscalated, Event, PetitionSubmitted

from .models import petition_access


def concerned(event: Event) -> set[tuple[str, str]]:
    """The ("unit" | "member", id) facts an event adds to what the rule knows of a petition."""
    match event:
        case PetitionSubmitted():
            return {("unit", event.unit_id)}
        case CaseAssigned():
            # The rung's unit is not the petition's: holding it there gives its members nothing.
            return {("member", event.member_id)}
        case CaseEscalated() if event.from_member_id:
            return {("member", event.from_member_id)}
    return set()


async def record_access(conn: AsyncConnection, event: Event) -> None:
    """Add what this event tells of the petition, in the handler's transaction (repeats add
    nothing)."""
    pairs = concerned(event)
    if not pairs:
        return
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    rows = [
        {"petition_id": str(event.petition_id), "scope": kind, "ref": ref}
        for kind, ref in sorted(pairs)
    ]
    await conn.execute(insert(petition_access).values(rows).on_conflict_do_nothing())


def visible_petitions(staff: Staff) -> ColumnElement[bool] | None:
    """`scope.may_see` as a condition on `petition_access` rows: one of the person's own
    "member" rows (they held it), or, for a leader, a "unit" row that is their unit or within
    their reach (`scope.leads`). None for administrators (no filter)."""
    if staff.is_admin:
        return None
    pa = petition_access
    allowed: list[ColumnElement[bool]] = []
    if staff.member_id:
        allowed.append(and_(pa.c.scope == "member", pa.c.ref == staff.member_id))
    if staff.role == "leader" and staff.unit_id is not None:
        reach = sorted({staff.unit_id, *staff.units})
        allowed.append(and_(pa.c.scope == "unit", pa.c.ref.in_(reach)))
    return or_(*allowed) if allowed else false()


def visible_filter(staff: Staff, petition_id: ColumnElement[str]) -> ColumnElement[bool] | None:
    """`petition_id IN (the petitions this person may see)`, or None for administrators."""
    allowed = visible_petitions(staff)
    if allowed is None:
        return None
    return petition_id.in_(select(petition_access.c.petition_id).where(allowed))


async def reach_of(conn: AsyncConnection, petition_id: str) -> scope.Reach:
    """What notify knows of the petition for the rule."""
    pa = petition_access
    rows = (
        await conn.execute(select(pa.c.scope, pa.c.ref).where(pa.c.petition_id == petition_id))
    ).all()
    return scope.Reach(
        units={r.ref for r in rows if r.scope == "unit"},
        holders={r.ref for r in rows if r.scope == "member"},
    )


async def may_see_petition(conn: AsyncConnection, staff: Staff, petition_id: str) -> bool:
    if staff.is_admin:
        return True
    return scope.may_see(staff, await reach_of(conn, petition_id))


def digest_for(content: dict[str, Any], *, whole: bool, member_id: str | None) -> dict[str, Any]:
    """A unit's meeting digest as one reader may see it: whole for those who may see the unit
    (`scope.may_see_unit`), otherwise only the reader's own line (the cases they held, which
    they see), with the totals of that line."""
    if whole:
        return content
    own = [m for m in content.get("members", []) if m.get("member_id") == member_id]
    sections = ("open", "overdue", "escalated", "resolved")
    totals = {name: sum(len(m.get(name, [])) for m in own) for name in sections}
    return {**content, "members": own, "totals": totals}


def digest_view(staff: Staff, unit_id: str, content: dict[str, Any]) -> dict[str, Any] | None:
    """A stored or previewed digest of `unit_id` as this person may see it: whole for those who
    may see the unit, their own line for the unit's members it was sent to, None (not found)
    for anyone else."""
    if not may_open_digest(staff, unit_id):
        return None
    whole = scope.may_see_unit(staff, unit_id)
    return digest_for(content, whole=whole, member_id=staff.member_id)


def may_open_digest(staff: Staff, unit_id: str) -> bool:
    """Those who may see the unit, and the unit's members the digest is sent to."""
    return scope.may_see_unit(staff, unit_id) or (
        staff.member_id is not None and staff.unit_id == unit_id
    )
