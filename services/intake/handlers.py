"""Keep the resident's view of their petition current from routing's events.

Each handler runs inside the inbox transaction (`shared.messaging.Consumers`), so a redelivered
event changes nothing. Internal notes (`CaseNoteAdded`) are staff-only and reminders
(`CaseReminderDue`) are for members: neither is consumed here.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake.models import petitions, public_timeline
from services.intake.petitions import PublicUpdate, public_update, supersedes
from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseDeclined,
    CaseEscalated,
    CaseEvent,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseResumed,
)
from shared.messaging import Consumers

log = structlog.get_logger(__name__)


class StatusRaced(Exception):
    """Another event changed the petition between our read and our write; retrying re-decides."""


async def show_update(conn: AsyncConnection, event: CaseEvent) -> None:
    """Add the event's line to the public timeline and, unless a newer event already moved the
    status on, apply the status it means (compare-and-set)."""
    update_ = public_update(event)
    if update_ is None:
        return
    pid = str(event.petition_id)
    row = (
        (
            await conn.execute(
                select(petitions.c.status, petitions.c.status_event_at).where(petitions.c.id == pid)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        log.warning("event_for_unknown_petition", petition_id=pid, event_id=str(event.event_id))
        return
    await _add_timeline_line(conn, event, update_)
    if update_.status is None:
        return
    if not supersedes(
        current_status=row["status"],
        current_event_at=row["status_event_at"],
        new_status=update_.status,
        occurred_at=event.occurred_at,
    ):
        log.info("stale_event_kept_in_history", petition_id=pid, event_id=str(event.event_id))
        return
    expected_at = petitions.c.status_event_at
    result = await conn.execute(
        update(petitions)
        .where(
            and_(
                petitions.c.id == pid,
                petitions.c.status == row["status"],
                expected_at.is_(None)
                if row["status_event_at"] is None
                else expected_at == row["status_event_at"],
            )
        )
        .values(**_status_values(event, update_))
    )
    if result.rowcount != 1:
        raise StatusRaced(pid)


async def _add_timeline_line(
    conn: AsyncConnection, event: CaseEvent, update_: PublicUpdate
) -> None:
    """The event's line in the public timeline, once: per event, or per petition for notices
    routing repeats (the daily overdue notice)."""
    pid = str(event.petition_id)
    seen_where = public_timeline.c.event_id == str(event.event_id)
    if update_.once:
        seen_where = and_(
            public_timeline.c.petition_id == pid, public_timeline.c.kind == update_.kind
        )
    if await conn.scalar(select(public_timeline.c.id).where(seen_where).limit(1)) is not None:
        return
    await conn.execute(
        insert(public_timeline).values(
            petition_id=pid,
            event_id=str(event.event_id),
            kind=update_.kind,
            occurred_at=event.occurred_at,
            message_vi=update_.message_vi,
            message_en=update_.message_en,
            detail=update_.detail,
        )
    )


def _status_values(event: CaseEvent, update_: PublicUpdate) -> dict[str, Any]:
    """The petition's columns the event sets: status, deadline, rung, and the open question
    (kept while the case waits for the resident, cleared by whatever moves it on)."""
    values: dict[str, Any] = {
        "status": update_.status,
        "status_changed_at": event.occurred_at,
        "status_event_at": event.occurred_at,
    }
    if update_.deadline is not None:
        values["due_at"] = update_.deadline[1]
    if update_.rung is not None:
        values["rung"] = update_.rung
    if isinstance(event, CaseResolved):
        values["resolution_event_id"] = str(event.event_id)
    if isinstance(event, CaseQuestionAsked):
        values |= {
            "question_id": str(event.question_id),
            "question_event_id": str(event.event_id),
            "question_text": event.question,
        }
    elif update_.status != "waiting_for_resident":
        # Whatever moved the case on also ended the wait for an answer.
        values |= {"question_id": None, "question_event_id": None, "question_text": None}
    return values


async def when_case_assigned_show_assignment(conn: AsyncConnection, event: CaseAssigned) -> None:
    """The resident sees that someone holds their petition, and by when it should be settled."""
    await show_update(conn, event)


async def when_case_accepted_show_in_progress(conn: AsyncConnection, event: CaseAccepted) -> None:
    """The resident sees that the holder is working on it."""
    await show_update(conn, event)


async def when_case_resolved_show_resolution(conn: AsyncConnection, event: CaseResolved) -> None:
    """The resident sees the explanation and may answer whether it settled the matter."""
    await show_update(conn, event)


async def when_case_reopened_show_reopened(conn: AsyncConnection, event: CaseReopened) -> None:
    """The resident sees their "not resolved" taken up again."""
    await show_update(conn, event)


async def when_case_escalated_show_escalation(conn: AsyncConnection, event: CaseEscalated) -> None:
    """The resident sees that the petition moved up, and why."""
    await show_update(conn, event)


async def when_case_closed_show_closed(conn: AsyncConnection, event: CaseClosed) -> None:
    """The resident sees the petition finished."""
    await show_update(conn, event)


async def when_case_question_asked_ask_resident(
    conn: AsyncConnection, event: CaseQuestionAsked
) -> None:
    """The resident sees the holder's question, and a form to answer it."""
    await show_update(conn, event)


async def when_case_resumed_show_in_progress(conn: AsyncConnection, event: CaseResumed) -> None:
    """The wait is over (answered, or the longest wait passed): the question can no longer be
    answered from the tracking page, and work continues."""
    await show_update(conn, event)


async def when_case_rejected_show_rejection(conn: AsyncConnection, event: CaseRejected) -> None:
    """The resident sees that the petition will not be handled, and why."""
    await show_update(conn, event)


async def when_case_declined_show_handover(conn: AsyncConnection, event: CaseDeclined) -> None:
    """A timeline line only: the case goes to someone else, nobody is named."""
    await show_update(conn, event)


async def when_case_overdue_at_top_show_once(
    conn: AsyncConnection, event: CaseOverdueAtTop
) -> None:
    """One timeline line the first time, however many daily notices follow."""
    await show_update(conn, event)


def register(consumers: Consumers) -> None:
    consumers.add(CaseAssigned, when_case_assigned_show_assignment)
    consumers.add(CaseAccepted, when_case_accepted_show_in_progress)
    consumers.add(CaseResolved, when_case_resolved_show_resolution)
    consumers.add(CaseReopened, when_case_reopened_show_reopened)
    consumers.add(CaseEscalated, when_case_escalated_show_escalation)
    consumers.add(CaseClosed, when_case_closed_show_closed)
    consumers.add(CaseQuestionAsked, when_case_question_asked_ask_resident)
    consumers.add(CaseResumed, when_case_resumed_show_in_progress)
    consumers.add(CaseRejected, when_case_rejected_show_rejection)
    consumers.add(CaseDeclined, when_case_declined_show_handover)
    consumers.add(CaseOverdueAtTop, when_case_overdue_at_top_show_once)
