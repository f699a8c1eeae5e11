"""Staff JSON API: a petition's timeline with its delivery log, the administrators' view of
notifications that could not be delivered (with a retry action), the in-app inbox with its
unread count, resolution statistics per unit, member and petition, and meeting digests.

Access (`access.py`): a petition's data only for those who may see the petition, answered 404
otherwise; a unit's figures for those who may see the unit; a member's for the member, their
leaders and administrators.

No `from __future__ import annotations` here: FastAPI must see the `Annotated` dependency
aliases, which are built inside `api_router`, as objects rather than strings.
"""

import json
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import Staff
from shared.clock import Clock

from . import inbox
from .access import may_see_member, may_see_petition
from .directory import Directory, DirectoryUnavailable
from .models import digests, notifications, petition_facts, timeline
from .stats import petition_report, scope_totals
from .units import UnitCache

NotificationStatus = Literal["queued", "failed", "sent", "skipped", "dead"]
# Statistics cover at most this many days per request.
MAX_RANGE_DAYS = 3660

# What the delivery log shows; a resident's address is never stored, a member's is not shown.
_LOG_COLUMNS = (
    notifications.c.id,
    notifications.c.event_id,
    notifications.c.channel,
    notifications.c.fallback_of,
    notifications.c.hold_reason,
    notifications.c.recipient_kind,
    notifications.c.recipient_ref,
    notifications.c.template,
    notifications.c.status,
    notifications.c.attempts,
    notifications.c.last_error,
    notifications.c.created_at,
    notifications.c.next_attempt_at,
    notifications.c.sent_at,
)


def _jsonable(row: Any) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in dict(row).items()}


def date_range(start: date | None, end: date | None, *, today: date) -> tuple[date, date]:
    """`from`..`to` inclusive, in local days; the last 30 days by default."""
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise HTTPException(422, "`from` sau `to` / `from` is after `to`")
    if (end - start).days > MAX_RANGE_DAYS:
        raise HTTPException(422, "Khoảng thời gian quá dài / Range too long")
    return start, end


def api_router(
    *,
    engine: AsyncEngine,
    clock: Clock,
    zone: ZoneInfo,
    current_staff: Callable[..., Staff],
    wake_delivery: Callable[[], None],
    directory: Directory,
    unit_cache: UnitCache,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["notify"])
    StaffUser = Annotated[Staff, Depends(current_staff)]

    def admin(staff: StaffUser) -> Staff:
        if not staff.is_admin:
            raise HTTPException(403, "Chỉ quản trị viên / Administrators only")
        return staff

    Admin = Annotated[Staff, Depends(admin)]
    From = Annotated[date | None, Query(alias="from", description="first local day, YYYY-MM-DD")]
    To = Annotated[date | None, Query(alias="to", description="last local day, YYYY-MM-DD")]

    @router.get("/petitions/{petition_id}/timeline")
    async def petition_timeline(petition_id: uuid.UUID, staff: StaffUser) -> dict[str, Any]:
        """A petition's events in the order they happened, and every notification about it."""
        pid = str(petition_id)
        t, n = timeline, notifications
        async with engine.connect() as conn:
            if not await may_see_petition(conn, staff, pid):
                raise HTTPException(404, "Không có phản ánh này / No such petition")
            events = (
                (
                    await conn.execute(
                        select(
                            t.c.event_id,
                            t.c.kind,
                            t.c.subject,
                            t.c.occurred_at,
                            t.c.summary_vi,
                            t.c.summary_en,
                            t.c.payload,
                        )
                        .where(t.c.petition_id == pid)
                        .order_by(t.c.occurred_at, t.c.id)
                    )
                )
                .mappings()
                .all()
            )
            log = (
                (
                    await conn.execute(
                        select(*_LOG_COLUMNS).where(n.c.petition_id == pid).order_by(n.c.id)
                    )
                )
                .mappings()
                .all()
            )
        if not events and not log:
            raise HTTPException(404, "Không có phản ánh này / No such petition")
        return {
            "petition_id": pid,
            "events": [
                {
                    **_jsonable({k: v for k, v in e.items() if k != "payload"}),
                    "data": json.loads(e["payload"]),
                }
                for e in events
            ],
            "deliveries": [_jsonable(r) for r in log],
        }

    @router.get("/notifications")
    async def list_notifications(
        _: Admin, status: NotificationStatus | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Notifications by status, newest first (`?status=dead` is what needs a person)."""
        n = notifications
        query = select(*_LOG_COLUMNS, n.c.petition_id).order_by(n.c.id.desc())
        if status is not None:
            query = query.where(n.c.status == status)
        async with engine.connect() as conn:
            rows = (await conn.execute(query.limit(max(1, min(limit, 500))))).mappings().all()
        return [_jsonable(r) for r in rows]

    @router.post("/notifications/{notification_id}/retry")
    async def retry_notification(notification_id: int, _: Admin) -> dict[str, Any]:
        """Queue a dead or failing notification again, now, with a fresh set of attempts."""
        n = notifications
        async with engine.begin() as conn:
            result = await conn.execute(
                update(n)
                .where(and_(n.c.id == notification_id, n.c.status.in_(("dead", "failed"))))
                .values(status="queued", attempts=0, next_attempt_at=clock.now(), hold_reason=None)
            )
            if not result.rowcount:
                exists = await conn.scalar(select(n.c.status).where(n.c.id == notification_id))
                if exists is None:
                    raise HTTPException(404, "Không có thông báo này / No such notification")
                raise HTTPException(
                    409,
                    f"Thông báo đang ở trạng thái {exists} / Notification is {exists}, "
                    "only dead or failed ones can be retried",
                )
        wake_delivery()
        return {"retried": notification_id, "status": "queued"}

    def member_of(staff: Staff) -> str:
        if not staff.member_id:
            raise HTTPException(403, "Tài khoản không gắn với thành viên / Not a member account")
        return staff.member_id

    @router.get("/inbox")
    async def my_inbox(staff: StaffUser, unread: bool = False, limit: int = 50) -> dict[str, Any]:
        """The signed-in member's in-app notifications, newest first, and the unread count."""
        member_id = member_of(staff)
        return {
            "unread": await inbox.unread_count(engine, member_id),
            "messages": await inbox.messages(
                engine, member_id, unread_only=unread, limit=max(1, min(limit, 200))
            ),
        }

    @router.get("/inbox/unread-count")
    async def my_unread_count(staff: StaffUser) -> dict[str, int]:
        return {"unread": await inbox.unread_count(engine, member_of(staff))}

    @router.post("/inbox/{message_id}/read")
    async def read_message(message_id: int, staff: StaffUser) -> dict[str, int]:
        member_id = member_of(staff)
        if not await inbox.owns(engine, member_id, message_id):
            raise HTTPException(404, "Không có thông báo này / No such message")
        await inbox.mark_read(engine, member_id, now=clock.now(), message_id=message_id)
        return {"unread": await inbox.unread_count(engine, member_id)}

    @router.post("/inbox/read-all")
    async def read_all(staff: StaffUser) -> dict[str, int]:
        member_id = member_of(staff)
        await inbox.mark_read(engine, member_id, now=clock.now())
        return {"unread": 0}

    def today() -> date:
        return clock.now().astimezone(zone).date()

    @router.get("/stats/units/{unit_id}")
    async def unit_stats(
        unit_id: str,
        staff: StaffUser,
        start: From = None,
        end: To = None,
        sub_units: Annotated[
            bool, Query(description="add the figures of every unit below this one")
        ] = False,
    ) -> dict[str, Any]:
        """A unit's counters over local days `from`..`to`, with the on-time rate (on-time
        resolutions over resolutions plus deadline escalations) and averages; with
        `sub_units=true`, the unit and every unit below it added up. For those who may see
        the unit (a leader: their unit and those below; a member: their own)."""
        if not staff.may_see_unit(unit_id):
            raise HTTPException(403, "Không xem được đơn vị này / Not a unit you may see")
        first, last = date_range(start, end, today=today())
        counted = [unit_id]
        if sub_units:
            tree = await unit_cache.tree()
            if tree is None:
                raise HTTPException(
                    503, "Chưa lấy được cây đơn vị / The unit tree is not available"
                )
            counted = [u for u in tree.subtree(unit_id) if staff.may_see_unit(u)]
        async with engine.connect() as conn:
            totals = await scope_totals(
                conn, scope="unit", scope_ids=counted, start=first, end=last
            )
        return {
            "unit_id": unit_id,
            "units": counted,
            "from": first.isoformat(),
            "to": last.isoformat(),
            **totals,
        }

    @router.get("/stats/members/{member_id}")
    async def member_stats(
        member_id: str, staff: StaffUser, start: From = None, end: To = None
    ) -> dict[str, Any]:
        """A member's counters: for the member, a leader whose units include the member's
        unit, and administrators."""
        unit_id = None
        if staff.role == "leader" and staff.member_id != member_id:
            try:
                found = await directory.members(member_ids=[member_id])
            except DirectoryUnavailable:
                raise HTTPException(
                    503, "Chưa hỏi được routing / Routing did not answer, try again"
                ) from None
            unit_id = found[0].unit_id if found else None
        if not may_see_member(staff, member_id, unit_id):
            raise HTTPException(403, "Không xem được số liệu này / Not figures you may see")
        first, last = date_range(start, end, today=today())
        async with engine.connect() as conn:
            totals = await scope_totals(
                conn, scope="member", scope_ids=[member_id], start=first, end=last
            )
        return {
            "member_id": member_id,
            "from": first.isoformat(),
            "to": last.isoformat(),
            **totals,
        }

    @router.get("/stats/petitions/{petition_id}")
    async def petition_stats(petition_id: uuid.UUID, staff: StaffUser) -> dict[str, Any]:
        """Time to first response and to resolution, each rung on time or late, reopen count
        and the resident's satisfaction."""
        pf = petition_facts
        async with engine.connect() as conn:
            if not await may_see_petition(conn, staff, str(petition_id)):
                raise HTTPException(404, "Không có phản ánh này / No such petition")
            row = (
                (await conn.execute(select(pf).where(pf.c.petition_id == str(petition_id))))
                .mappings()
                .first()
            )
        if row is None:
            raise HTTPException(404, "Không có phản ánh này / No such petition")
        return petition_report(dict(row), now=clock.now())

    @router.get("/digests/{digest_id}")
    async def digest(digest_id: int, staff: StaffUser) -> dict[str, Any]:
        """A meeting digest, for those who may see its unit."""
        d = digests
        async with engine.connect() as conn:
            row = (
                await conn.execute(select(d.c.unit_id, d.c.content).where(d.c.id == digest_id))
            ).first()
        if row is None or not staff.may_see_unit(row.unit_id):
            raise HTTPException(404, "Không có bản tổng hợp này / No such digest")
        content = row.content
        result: dict[str, Any] = json.loads(content)
        return {"id": digest_id, **result}

    return router
