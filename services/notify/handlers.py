"""Every petition event lands on the petition's timeline, records who may see the petition,
updates its resolution facts and the unit and member counters, and queues whatever
notifications it calls for, all in the one transaction the consumer opens with the inbox row:
an event is taken in fully or not at all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import CATALOGUE, Event
from shared.runtime import Runtime

from .access import record_access
from .facts import Facts
from .models import timeline
from .notifications import plan_notifications
from .queueing import Queueing, insert_ignoring, queue_planned
from .statements import Statements
from .stats import ResolutionTracker
from .timeline import kind_of, summarise


async def append_to_timeline(conn: AsyncConnection, statements: Statements, event: Event) -> bool:
    """The history of a petition is its events; one row per event id, whatever the redeliveries."""
    summary = summarise(event)
    return await insert_ignoring(
        conn,
        statements,
        timeline,
        {
            "petition_id": str(event.petition_id),
            "event_id": str(event.event_id),
            "subject": event.subject,
            "kind": kind_of(type(event)),
            "occurred_at": event.occurred_at,
            "summary_vi": summary.vi,
            "summary_en": summary.en,
            "payload": event.model_dump_json(),
        },
        unique="event_id",
    )


def reference_context(facts: Facts) -> dict[str, Any]:
    """How messages name the petition: the reference the resident was given (a short id until
    the submission has arrived) and its title."""
    return {
        "reference": facts.reference or facts.petition_id[:8].upper(),
        "title": facts.title,
    }


def when_event_received_record_timeline_update_stats_and_queue_notifications(
    q: Queueing, tracker: ResolutionTracker
) -> Callable[[AsyncConnection, Event], Awaitable[None]]:
    async def handle(conn: AsyncConnection, event: Event) -> None:
        petition_id = str(event.petition_id)
        await append_to_timeline(conn, q.statements, event)
        await record_access(conn, event)
        facts = await tracker.refresh(conn, petition_id, now=q.clock.now(), event=event)
        for planned in plan_notifications(event, facts):
            await queue_planned(
                conn,
                q,
                petition_id=petition_id,
                transition=str(event.event_id),
                planned=planned,
                facts_context=reference_context(facts),
            )

    handle.__name__ = "when_event_received_record_timeline_update_stats_and_queue_notifications"
    return handle


def register_handlers(runtime: Runtime, q: Queueing, tracker: ResolutionTracker) -> None:
    """One durable consumer per event type (`notify-timeline-<kind>`), so a backlog or a poison
    message of one type never holds up the others."""
    handler = when_event_received_record_timeline_update_stats_and_queue_notifications(q, tracker)
    for event_type in CATALOGUE.values():
        runtime.consumers.add(event_type, handler, name=f"timeline-{kind_of(event_type)}")
