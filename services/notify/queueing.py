"""Putting notifications in the delivery queue, inside the caller's transaction: one row per
petition, transition, recipient and channel (the idempotency key), held for the batching window
or the recipient's quiet hours when those apply, and a staff member's in-app copy at once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import Clock

from .channels import Templates, render
from .config import IN_APP, NotifyConfig
from .models import notifications, staff_inbox
from .notifications import (
    PlannedNotification,
    batch_key,
    idempotency_key,
    quiet_until,
)
from .statements import Statements


@dataclass(frozen=True)
class Queueing:
    """What queueing needs from the running service."""

    config: NotifyConfig
    templates: Templates
    clock: Clock
    routing_url: str
    statements: Statements = field(default_factory=Statements)

    def case_link(self, case_id: str | None) -> str:
        base = self.routing_url.rstrip("/")
        return f"{base}/cases/{case_id}" if case_id else base


async def insert_ignoring(
    conn: AsyncConnection,
    statements: Statements,
    table: Table,
    values: Mapping[str, Any],
    *,
    unique: str,
) -> bool:
    """Insert unless a row with the same `unique` column exists; True when a row was added."""

    def build(dialect: str) -> Any:
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        return insert(table).on_conflict_do_nothing(index_elements=[unique])

    stmt = statements.get(conn, f"insert-ignoring:{table.name}:{unique}", build)
    result = await conn.execute(stmt, dict(values))
    return bool(result.rowcount)


async def release_time(
    conn: AsyncConnection,
    q: Queueing,
    *,
    now: datetime,
    recipient_kind: str,
    recipient_ref: str,
    channel: str,
    template: str,
) -> tuple[datetime, str | None, str | None]:
    """When a new message may leave, why it waits, and the batch it joins.

    A batchable message joins the recipient's open batch on this channel (and leaves with it),
    or opens one that leaves a window from now. Quiet hours then push it to their end."""
    release, hold, key = now, None, None
    window = q.config.batching.window_minutes
    if template in q.config.batching.templates and window > 0:
        key = batch_key(
            recipient_kind=recipient_kind,
            recipient_ref=recipient_ref,
            channel=channel,
            template=template,
        )
        n = notifications
        open_batch = await conn.scalar(
            select(n.c.next_attempt_at)
            .where(
                and_(
                    n.c.batch_key == key,
                    n.c.status == "queued",
                    n.c.attempts == 0,
                    n.c.next_attempt_at > now,
                )
            )
            .order_by(n.c.id)
            .limit(1)
        )
        release = open_batch or now + timedelta(minutes=window)
        hold = "batch"
    quiet = quiet_until(
        release, q.config.quiet_hours_for(recipient_kind, recipient_ref), channel, q.config.zone
    )
    if quiet is not None:
        release, hold = quiet, "quiet_hours"
    return release, hold, key


async def queue_on_channel(
    conn: AsyncConnection,
    q: Queueing,
    *,
    petition_id: str | None,
    transition: str,
    planned: PlannedNotification,
    channel: str,
    fallbacks: tuple[str, ...],
    fallback_of: int | None = None,
) -> bool:
    """One row in the delivery queue; False when this exact notification exists already."""
    now = q.clock.now()
    release, hold, bkey = await release_time(
        conn,
        q,
        now=now,
        recipient_kind=planned.recipient_kind,
        recipient_ref=planned.recipient_ref,
        channel=channel,
        template=planned.template,
    )
    key = idempotency_key(
        petition_id=petition_id or "-",
        transition=transition,
        recipient_kind=planned.recipient_kind,
        recipient_ref=planned.recipient_ref,
        channel=channel,
    )
    context = {**planned.context, "recipient_name": planned.recipient_name}
    return await insert_ignoring(
        conn,
        q.statements,
        notifications,
        {
            "idempotency_key": key,
            "petition_id": petition_id,
            "event_id": transition[:36],
            "recipient_kind": planned.recipient_kind,
            "recipient_ref": planned.recipient_ref,
            "recipient_address": planned.recipient_address,
            "channel": channel,
            "template": planned.template,
            "context": json.dumps(context, ensure_ascii=False),
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": release,
            "hold_reason": hold,
            "batch_key": bkey,
            "fallbacks": json.dumps(list(fallbacks)),
            "fallback_of": fallback_of,
            "created_at": now,
        },
        unique="idempotency_key",
    )


async def add_in_app(
    conn: AsyncConnection,
    q: Queueing,
    *,
    petition_id: str | None,
    transition: str,
    planned: PlannedNotification,
    context: Mapping[str, Any],
) -> bool:
    """The staff member's in-app copy, written now (no quiet hours: nobody is woken by it), and
    its line in the delivery log."""
    now = q.clock.now()
    key = idempotency_key(
        petition_id=petition_id or "-",
        transition=transition,
        recipient_kind=planned.recipient_kind,
        recipient_ref=planned.recipient_ref,
        channel=IN_APP,
    )
    full = {**planned.context, **context, "recipient_name": planned.recipient_name}
    content = render(q.templates, planned.template, full)
    added = await insert_ignoring(
        conn,
        q.statements,
        staff_inbox,
        {
            "member_id": planned.recipient_ref,
            "idempotency_key": key,
            "petition_id": petition_id,
            "template": planned.template,
            "title_vi": content.vi.subject,
            "title_en": content.en.subject,
            "body_vi": content.vi.body,
            "body_en": content.en.body,
            "link": full.get("link"),
            "created_at": now,
        },
        unique="idempotency_key",
    )
    if added:
        await _log_in_app(
            conn, q, key=key, petition_id=petition_id, transition=transition, planned=planned
        )
    return added


async def _log_in_app(
    conn: AsyncConnection,
    q: Queueing,
    *,
    key: str,
    petition_id: str | None,
    transition: str,
    planned: PlannedNotification,
) -> None:
    """An in-app copy's line in the delivery log: sent when written, in one attempt."""
    now = q.clock.now()
    await insert_ignoring(
        conn,
        q.statements,
        notifications,
        {
            "idempotency_key": key,
            "petition_id": petition_id,
            "event_id": transition[:36],
            "recipient_kind": planned.recipient_kind,
            "recipient_ref": planned.recipient_ref,
            "channel": IN_APP,
            "template": planned.template,
            "context": "{}",
            "status": "sent",
            "attempts": 1,
            "next_attempt_at": now,
            "created_at": now,
            "sent_at": now,
        },
        unique="idempotency_key",
    )


async def queue_planned(
    conn: AsyncConnection,
    q: Queueing,
    *,
    petition_id: str | None,
    transition: str,
    planned: PlannedNotification,
    facts_context: Mapping[str, Any],
) -> None:
    """Queue `planned` on the recipient's first channel (the rest wait as fallbacks); staff also
    get their in-app copy."""
    if planned.recipient_kind == "member":
        chain = q.config.member_channels(planned.recipient_ref)
        link = planned.context.get("link") or q.case_link(planned.context.get("case_id"))
        planned = PlannedNotification(
            recipient_kind=planned.recipient_kind,
            recipient_ref=planned.recipient_ref,
            template=planned.template,
            context={**facts_context, **planned.context, "link": link},
            recipient_address=planned.recipient_address,
            recipient_name=planned.recipient_name,
        )
        await add_in_app(
            conn,
            q,
            petition_id=petition_id,
            transition=transition,
            planned=planned,
            context={},
        )
    else:
        chain = q.config.resident_channels()
        planned = PlannedNotification(
            recipient_kind=planned.recipient_kind,
            recipient_ref=planned.recipient_ref,
            template=planned.template,
            context={**facts_context, **planned.context},
        )
    if not chain:
        return
    await queue_on_channel(
        conn,
        q,
        petition_id=petition_id,
        transition=transition,
        planned=planned,
        channel=chain[0],
        fallbacks=chain[1:],
    )
