"""The delivery log: every notification with what happened to it, for administrators, and a
retry for those that could not be delivered (`?status=dead` is what needs a person) and for
those that may have been sent (`?status=in_doubt`: a worker was killed mid-send).

No `from __future__ import annotations` here: FastAPI must see the `Annotated` dependencies
and pydantic the models as objects rather than strings.
"""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.web import AdminStaff, AppRuntime, problem_responses

from ..deps import DeliveryDep
from ..errors import NotificationNotFound, NotificationNotRetryable
from ..models import notifications
from .openapi import links, operation_id

# `in_doubt`: a send began and its outcome was never recorded; it may have left, and is not
# sent again unless a person retries it.
NotificationStatus = Literal["queued", "failed", "sent", "skipped", "dead", "in_doubt"]
# Row ids are 64-bit on PostgreSQL: a larger number names no row and is refused as invalid.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]

# What the delivery log shows; a resident's address is never stored, a member's is not shown.
LOG_COLUMNS = (
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


class Delivery(BaseModel):
    """One notification to one recipient on one channel, and where it stands."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str = Field(description="the event (or digest) that called for it")
    channel: str = Field(description="email, in_app, or a configured webhook channel")
    fallback_of: int | None = Field(description="the notification whose failure queued this one")
    hold_reason: Literal["batch", "quiet_hours"] | None
    recipient_kind: Literal["member", "resident"]
    recipient_ref: str = Field(description="a member id, or `resident`")
    template: str
    status: NotificationStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None


class LoggedNotification(Delivery):
    petition_id: str | None = Field(description="none for a meeting digest")


class NotificationFilter(BaseModel):
    """Which notifications to list: one status or all, at most `limit`, newest first."""

    status: NotificationStatus | None = None
    limit: int = Field(default=100, ge=1, le=500)


class RetriedNotification(BaseModel):
    retried: int
    status: Literal["queued"] = "queued"


router = APIRouter(
    prefix="/api/v1/notifications", tags=["notifications"], generate_unique_id_function=operation_id
)


@router.get(
    "",
    responses={
        **problem_responses(401, 403),
        **links(
            retry=("retry_notification", {"notification_id": "$response.body#/0/id"}),
            timeline=("petition_timeline", {"petition_id": "$response.body#/0/petition_id"}),
        ),
    },
)
async def list_notifications(
    _: AdminStaff, runtime: AppRuntime, query: Annotated[NotificationFilter, Query()]
) -> list[LoggedNotification]:
    """Notifications by status, newest first (administrators)."""
    n = notifications
    stmt = select(*LOG_COLUMNS, n.c.petition_id).order_by(n.c.id.desc()).limit(query.limit)
    if query.status is not None:
        stmt = stmt.where(n.c.status == query.status)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [LoggedNotification.model_validate(dict(r)) for r in rows]


@router.post("/{notification_id}/retry", responses=problem_responses(401, 403, 404, 409))
async def retry_notification(
    notification_id: RowId, _: AdminStaff, runtime: AppRuntime, delivery: DeliveryDep
) -> RetriedNotification:
    """Queue a dead, failing or in-doubt (may have been sent) notification again, now, with a
    fresh set of attempts."""
    async with runtime.engine.begin() as conn:
        await requeue(conn, notification_id, now=runtime.clock.now())
    delivery.wake()
    return RetriedNotification(retried=notification_id)


async def requeue(conn: AsyncConnection, notification_id: int, *, now: datetime) -> None:
    """Only a dead, failing or in-doubt notification goes back to the queue (compare-and-set,
    so two administrators retrying at once queue it once). An in-doubt one leaves again with
    the same Message-ID or webhook delivery id."""
    n = notifications
    result = await conn.execute(
        update(n)
        .where(and_(n.c.id == notification_id, n.c.status.in_(("dead", "failed", "in_doubt"))))
        .values(
            status="queued",
            attempts=0,
            next_attempt_at=now,
            hold_reason=None,
            send_started_at=None,
        )
    )
    if result.rowcount:
        return
    status = await conn.scalar(select(n.c.status).where(n.c.id == notification_id))
    if status is None:
        raise NotificationNotFound
    raise NotificationNotRetryable(status)
