"""Every petition event lands on the petition's timeline, records who may see the petition,
updates its resolution facts and the unit and member counters, and queues whatever
notifications it calls for, all in the one transaction the consumer opens with the inbox row:
an event is taken in fully or not at all."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import (
    ACCOUNT_EVENTS,
    CATALOGUE,
    REDACTED_TEXT,
    Event,
    PetitionRedacted,
    parse_event,
    redacted,
    resident_texts,
)
from shared.messaging import NotYet
from shared.runtime import Runtime

from .access import record_access
from .facts import Facts
from .models import notifications, staff_inbox, timeline
from .notifications import plan_notifications, waits_for
from .queueing import Queueing, insert_ignoring, queue_planned
from .statements import Statements
from .stats import ResolutionTracker
from .timeline import kind_of, summarise

REDACTED_KIND = kind_of(PetitionRedacted)


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
        erased = isinstance(event, PetitionRedacted) or await is_redacted(conn, petition_id)
        if erased:
            # Also what a resident who was erased writes afterwards, or an event that arrives
            # after the redaction: kept without their text.
            event = redacted(event)
        await append_to_timeline(conn, q.statements, event)
        if isinstance(event, PetitionRedacted):
            await redact_petition(conn, petition_id)
        if erased:
            await tracker.forget(conn, petition_id)
        await record_access(conn, event)
        facts = await tracker.refresh(conn, petition_id, now=q.clock.now(), event=event)
        if (missing := waits_for(event, facts)) is not None:
            # Nothing of this event is kept (the transaction rolls back): it comes back, and
            # is taken in after the event it needs.
            raise NotYet(f"{event.subject} waits for {missing}")
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


async def is_redacted(conn: AsyncConnection, petition_id: str) -> bool:
    seen = select(timeline.c.id).where(
        and_(timeline.c.petition_id == petition_id, timeline.c.kind == REDACTED_KIND)
    )
    return await conn.scalar(seen.limit(1)) is not None


async def redact_petition(conn: AsyncConnection, petition_id: str) -> None:
    """The resident was erased: their text leaves the petition's timeline (payloads and
    summaries), its notifications' contexts and staff's in-app copies."""
    texts: set[str] = set()
    rows = await conn.execute(
        select(timeline.c.id, timeline.c.subject, timeline.c.payload).where(
            timeline.c.petition_id == petition_id
        )
    )
    for row_id, subject, payload in rows.all():
        event = parse_event(subject, payload.encode())
        clean = redacted(event)
        if clean is event:
            continue
        texts |= resident_texts(event)
        summary = summarise(clean)
        await conn.execute(
            update(timeline)
            .where(timeline.c.id == row_id)
            .values(payload=clean.model_dump_json(), summary_vi=summary.vi, summary_en=summary.en)
        )
    if texts:
        await _scrub_copies(conn, petition_id, texts)


async def _scrub_copies(conn: AsyncConnection, petition_id: str, texts: set[str]) -> None:
    n, inbox = notifications, staff_inbox
    rows = await conn.execute(select(n.c.id, n.c.context).where(n.c.petition_id == petition_id))
    for row_id, context in rows.all():
        data = json.loads(context)
        clean = {
            k: REDACTED_TEXT if isinstance(v, str) and v in texts else v for k, v in data.items()
        }
        if clean != data:
            await conn.execute(update(n).where(n.c.id == row_id).values(context=json.dumps(clean)))
    fields = ("title_vi", "title_en", "body_vi", "body_en")
    rows = await conn.execute(
        select(inbox.c.id, *(inbox.c[f] for f in fields)).where(inbox.c.petition_id == petition_id)
    )
    for row in rows.mappings().all():
        values = {f: _replace_all(row[f], texts) for f in fields}
        if any(values[f] != row[f] for f in fields):
            await conn.execute(update(inbox).where(inbox.c.id == row["id"]).values(**values))


def _replace_all(text: str, texts: set[str]) -> str:
    # Longest first, so a title inside the description is not half replaced.
    for said in sorted(texts, key=len, reverse=True):
        text = text.replace(said, REDACTED_TEXT)
    return text


def register_handlers(runtime: Runtime, q: Queueing, tracker: ResolutionTracker) -> None:
    """One durable consumer per event type (`notify-timeline-<kind>`), so a backlog or a poison
    message of one type never holds up the others."""
    handler = when_event_received_record_timeline_update_stats_and_queue_notifications(q, tracker)
    for event_type in CATALOGUE.values():
        if event_type in ACCOUNT_EVENTS:
            # About staff accounts, not a petition: `services.notify.accounts` sends those.
            continue
        runtime.consumers.add(event_type, handler, name=f"timeline-{kind_of(event_type)}")
