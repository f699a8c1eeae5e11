"""Every petition event lands on the petition's timeline; some also queue notifications, in the
same transaction, so an event is either fully taken in or not at all."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import Clock
from shared.events import CATALOGUE, Event
from shared.runtime import Runtime

from .models import notifications, timeline
from .notifications import PlannedNotification, idempotency_key, plan_notifications
from .timeline import kind_of, summarise


async def _insert_ignoring(
    conn: AsyncConnection, table: Table, values: dict[str, Any], *, unique: str
) -> bool:
    """Insert unless a row with the same `unique` column exists; True when a row was added."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=[unique])
    result = await conn.execute(stmt)
    return bool(result.rowcount)


async def append_to_timeline(conn: AsyncConnection, event: Event) -> bool:
    """The history of a petition is its events; one row per event id, whatever the redeliveries."""
    summary = summarise(event)
    return await _insert_ignoring(
        conn,
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


async def queue_notification(
    conn: AsyncConnection, event: Event, planned: PlannedNotification, *, clock: Clock
) -> bool:
    """Queue one message, keyed so the same transition never notifies the same person twice.
    A member without an address is logged as skipped, so the delivery log shows the gap."""
    now = clock.now()
    key = idempotency_key(
        petition_id=str(event.petition_id),
        transition=str(event.event_id),
        recipient_kind=planned.recipient_kind,
        recipient_ref=planned.recipient_ref,
        channel=planned.channel,
    )
    no_address = planned.recipient_kind == "member" and not planned.recipient_address
    return await _insert_ignoring(
        conn,
        notifications,
        {
            "idempotency_key": key,
            "petition_id": str(event.petition_id),
            "event_id": str(event.event_id),
            "recipient_kind": planned.recipient_kind,
            "recipient_ref": planned.recipient_ref,
            "recipient_address": planned.recipient_address,
            "channel": planned.channel,
            "template": planned.template,
            "context": json.dumps(planned.context, ensure_ascii=False),
            "status": "skipped" if no_address else "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "thành viên không có địa chỉ email / member has no email address"
            if no_address
            else None,
            "created_at": now,
        },
        unique="idempotency_key",
    )


def when_event_received_record_timeline_and_queue_notifications(
    clock: Clock,
) -> Callable[[AsyncConnection, Event], Awaitable[None]]:
    async def handle(conn: AsyncConnection, event: Event) -> None:
        await append_to_timeline(conn, event)
        for planned in plan_notifications(event):
            await queue_notification(conn, event, planned, clock=clock)

    handle.__name__ = "when_event_received_record_timeline_and_queue_notifications"
    return handle


def register_handlers(runtime: Runtime) -> None:
    """One durable consumer per event type (`notify-timeline-<kind>`), so a backlog or a poison
    message of one type never holds up the others."""
    handler = when_event_received_record_timeline_and_queue_notifications(runtime.clock)
    for event_type in CATALOGUE.values():
        runtime.consumers.add(event_type, handler, name=f"timeline-{kind_of(event_type)}")
