"""A petition's timeline: its events in the order they happened, and every notification about
it with what became of it. For those who may see the petition (`access.py`); for anyone else
the petition does not exist.

No `from __future__ import annotations` here: FastAPI must see the `Annotated` dependencies
and pydantic the models as objects rather than strings.
"""

import json
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.web import AppRuntime, CurrentStaff, problem_responses

from ..access import may_see_petition
from ..errors import PetitionNotFound
from ..models import notifications, timeline
from .notifications import LOG_COLUMNS, Delivery
from .openapi import links, operation_id


class TimelineEvent(BaseModel):
    """One event of the petition, with its summary in both languages."""

    event_id: str
    kind: str = Field(description="the event's name, e.g. `submitted`, `assigned`")
    subject: str = Field(description="the NATS subject it came on, with its version")
    occurred_at: datetime
    summary_vi: str
    summary_en: str
    data: dict[str, Any] = Field(
        description="the event as it was published; once the petition is redacted (the "
        "resident was erased), with what the resident wrote replaced"
    )


class Timeline(BaseModel):
    petition_id: uuid.UUID
    events: list[TimelineEvent]
    deliveries: list[Delivery]


router = APIRouter(
    prefix="/api/v1/petitions", tags=["timelines"], generate_unique_id_function=operation_id
)


@router.get(
    "/{petition_id}/timeline",
    responses={
        **problem_responses(401, 404),
        **links(statistics=("petition_stats", {"petition_id": "$response.body#/petition_id"})),
    },
)
async def petition_timeline(
    petition_id: uuid.UUID, staff: CurrentStaff, runtime: AppRuntime
) -> Timeline:
    """A petition's events in the order they happened, and every notification about it."""
    pid = str(petition_id)
    async with runtime.engine.connect() as conn:
        if not await may_see_petition(conn, staff, pid):
            raise PetitionNotFound
        events = await _events(conn, pid)
        deliveries = await _deliveries(conn, pid)
    if not events and not deliveries:
        raise PetitionNotFound
    return Timeline(petition_id=petition_id, events=events, deliveries=deliveries)


async def _events(conn: AsyncConnection, petition_id: str) -> list[TimelineEvent]:
    t = timeline
    rows = await conn.execute(
        select(
            t.c.event_id,
            t.c.kind,
            t.c.subject,
            t.c.occurred_at,
            t.c.summary_vi,
            t.c.summary_en,
            t.c.payload,
        )
        .where(t.c.petition_id == petition_id)
        .order_by(t.c.occurred_at, t.c.id)
    )
    return [
        TimelineEvent(
            event_id=row.event_id,
            kind=row.kind,
            subject=row.subject,
            occurred_at=row.occurred_at,
            summary_vi=row.summary_vi,
            summary_en=row.summary_en,
            data=json.loads(row.payload),
        )
        for row in rows
    ]


async def _deliveries(conn: AsyncConnection, petition_id: str) -> list[Delivery]:
    n = notifications
    rows = await conn.execute(
        select(*LOG_COLUMNS).where(n.c.petition_id == petition_id).order_by(n.c.id)
    )
    return [Delivery.model_validate(dict(row)) for row in rows.mappings()]
