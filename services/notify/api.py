"""Staff JSON API: a petition's timeline with its delivery log, and the administrators' view of
notifications that could not be delivered.

No `from __future__ import annotations` here: FastAPI must see the `Annotated` dependency
aliases, which are built inside `api_router`, as objects rather than strings.
"""

import json
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import Staff
from shared.clock import Clock

from .models import notifications, timeline

NotificationStatus = Literal["queued", "failed", "sent", "skipped", "dead"]

# What the delivery log shows; a resident's address is never stored, a member's is not shown.
_LOG_COLUMNS = (
    notifications.c.id,
    notifications.c.event_id,
    notifications.c.channel,
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


def api_router(
    *,
    engine: AsyncEngine,
    clock: Clock,
    current_staff: Callable[..., Staff],
    wake_delivery: Callable[[], None],
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["notify"])
    StaffUser = Annotated[Staff, Depends(current_staff)]

    def admin(staff: StaffUser) -> Staff:
        if not staff.is_admin:
            raise HTTPException(403, "Chỉ quản trị viên / Administrators only")
        return staff

    Admin = Annotated[Staff, Depends(admin)]

    @router.get("/petitions/{petition_id}/timeline")
    async def petition_timeline(petition_id: uuid.UUID, _: StaffUser) -> dict[str, Any]:
        """A petition's events in the order they happened, and every notification about it."""
        pid = str(petition_id)
        t, n = timeline, notifications
        async with engine.connect() as conn:
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
                .values(status="queued", attempts=0, next_attempt_at=clock.now())
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

    return router
