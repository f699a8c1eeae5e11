"""Who may see a petition's data (timeline, delivery log, statistics, digests).

Administrators see everything. Anyone else sees a petition when one of the units it concerned
(the resident's unit, or the unit of any rung that held it) is among the units they may see
(`Staff.units`: a leader's unit and those below it, a member's own unit), or when it was ever
assigned to them. For anything else the answer is "not found": that a petition exists is
itself not for everyone.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.auth import Staff
from shared.events import CaseAssigned, CaseEscalated, Event, PetitionSubmitted

from .models import petition_access


def concerned(event: Event) -> set[tuple[str, str]]:
    """The (scope, id) pairs an event makes a petition visible to."""
    match event:
        case PetitionSubmitted():
            return {("unit", event.unit_id)}
        case CaseAssigned():
            return {("unit", event.unit_id), ("member", event.member_id)}
        case CaseEscalated() if event.from_member_id:
            return {("member", event.from_member_id)}
    return set()


async def record_access(conn: AsyncConnection, event: Event) -> None:
    """Add what this event makes visible, in the handler's transaction (repeats add nothing)."""
    pairs = concerned(event)
    if not pairs:
        return
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    rows = [
        {"petition_id": str(event.petition_id), "scope": scope, "ref": ref}
        for scope, ref in sorted(pairs)
    ]
    await conn.execute(insert(petition_access).values(rows).on_conflict_do_nothing())


def visible_petitions(staff: Staff) -> ColumnElement[bool] | None:
    """A condition on `petition_access` rows this person may see; None for administrators
    (no filter)."""
    if staff.is_admin:
        return None
    pa = petition_access
    allowed: list[ColumnElement[bool]] = []
    if staff.units:
        allowed.append(and_(pa.c.scope == "unit", pa.c.ref.in_(staff.units)))
    if staff.member_id:
        allowed.append(and_(pa.c.scope == "member", pa.c.ref == staff.member_id))
    return or_(*allowed) if allowed else false()


def visible_filter(staff: Staff, petition_id: ColumnElement[str]) -> ColumnElement[bool] | None:
    """`petition_id IN (the petitions this person may see)`, or None for administrators."""
    allowed = visible_petitions(staff)
    if allowed is None:
        return None
    return petition_id.in_(select(petition_access.c.petition_id).where(allowed))


async def may_see_petition(conn: AsyncConnection, staff: Staff, petition_id: str) -> bool:
    allowed = visible_petitions(staff)
    if allowed is None:
        return True
    pa = petition_access
    found = await conn.scalar(
        select(pa.c.petition_id).where(and_(pa.c.petition_id == petition_id, allowed)).limit(1)
    )
    return found is not None


def may_see_member(staff: Staff, member_id: str, member_unit_id: str | None) -> bool:
    """A member's own figures; a leader's whose units include the member's unit; any for
    administrators."""
    if staff.is_admin or staff.member_id == member_id:
        return True
    return staff.role == "leader" and member_unit_id is not None and member_unit_id in staff.units
