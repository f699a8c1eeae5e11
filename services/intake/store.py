"""Reading and writing petitions: each function is one transaction, with its events in the outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.intake.models import contacts, messaging, petitions, public_timeline
from services.intake.petitions import (
    Submission,
    hash_token,
    new_reference,
    new_tracking_token,
    tracking_url,
)
from shared.events import FeedbackGiven, PetitionSubmitted, derived_id
from shared.messaging import add_to_outbox

PRODUCER = "intake"
# A 40-bit reference collides about once in a million petitions at a million stored; retrying a
# handful of times makes a failed submission practically impossible.
_UNIQUE_ATTEMPTS = 5


@dataclass(frozen=True)
class Receipt:
    petition_id: uuid.UUID
    reference: str
    tracking_token: str
    tracking_url: str
    status: str
    event_id: uuid.UUID


class FeedbackNotExpected(Exception):
    """The resident answered when there is no resolution waiting for their answer."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


async def submit_petition(
    engine: AsyncEngine, *, submission: Submission, now: datetime, public_url: str
) -> Receipt:
    """Store the petition, its contact and its first timeline line, and queue `PetitionSubmitted`,
    all in one transaction: an acknowledged petition is never lost and never unannounced."""
    for attempt in range(_UNIQUE_ATTEMPTS):
        petition_id = uuid.uuid4()
        reference = new_reference()
        token = new_tracking_token()
        event = PetitionSubmitted.new(
            producer=PRODUCER,
            petition_id=petition_id,
            occurred_at=now,
            reference=reference,
            unit_id=submission.unit_id,
            category_id=submission.category_id,
            title=submission.title,
            description=submission.description,
            location=submission.location,
            language=submission.language,
            wants_updates=submission.wants_updates,
        )
        try:
            async with engine.begin() as conn:
                await _insert_petition(conn, submission, petition_id, reference, token, event, now)
        except IntegrityError:
            # Only a reference or token collision can break a constraint here: draw again.
            if attempt == _UNIQUE_ATTEMPTS - 1:
                raise
            continue
        return Receipt(
            petition_id=petition_id,
            reference=reference,
            tracking_token=token,
            tracking_url=tracking_url(public_url, token),
            status="submitted",
            event_id=event.event_id,
        )
    raise AssertionError("unreachable")


async def _insert_petition(
    conn: AsyncConnection,
    s: Submission,
    petition_id: uuid.UUID,
    reference: str,
    token: str,
    event: PetitionSubmitted,
    now: datetime,
) -> None:
    await conn.execute(
        insert(petitions).values(
            id=str(petition_id),
            reference=reference,
            tracking_token_hash=hash_token(token),
            unit_id=s.unit_id,
            category_id=s.category_id,
            title=s.title,
            description=s.description,
            location=s.location,
            language=s.language,
            status="submitted",
            status_changed_at=now,
            status_event_at=None,
            correlation_id=str(event.event_id),
            submitted_at=now,
            created_at=now,
        )
    )
    await conn.execute(
        insert(contacts).values(
            petition_id=str(petition_id),
            name=s.name,
            phone=s.phone,
            email=s.email,
            wants_updates=s.wants_updates,
            tracking_token=token,
        )
    )
    await conn.execute(
        insert(public_timeline).values(
            petition_id=str(petition_id),
            event_id=str(event.event_id),
            kind="submitted",
            occurred_at=now,
            message_vi=f"Đã tiếp nhận phản ánh, mã số {reference}.",
            message_en=f"Petition received, reference {reference}.",
            detail=None,
        )
    )
    await add_to_outbox(conn, messaging.outbox, event)


async def petition_by_reference(engine: AsyncEngine, reference: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(petitions).where(petitions.c.reference == reference)))
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def petition_by_token(engine: AsyncEngine, token: str) -> dict[str, Any] | None:
    """The petition whose tracking token this is, with its contact and public timeline."""
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(petitions, contacts.c.name, contacts.c.email, contacts.c.phone)
                    .join(contacts, contacts.c.petition_id == petitions.c.id, isouter=True)
                    .where(petitions.c.tracking_token_hash == hash_token(token))
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        timeline = (
            (
                await conn.execute(
                    select(public_timeline)
                    .where(public_timeline.c.petition_id == row["id"])
                    .order_by(public_timeline.c.occurred_at, public_timeline.c.id)
                )
            )
            .mappings()
            .all()
        )
    return {**dict(row), "timeline": [dict(t) for t in timeline]}


async def give_feedback(
    engine: AsyncEngine,
    *,
    token: str,
    resolved: bool,
    comment: str | None,
    now: datetime,
) -> str:
    """Record the resident's answer to a resolution and queue `FeedbackGiven`; returns the new
    status. Compare-and-set on "resolved", so one resolution gets one answer."""
    async with engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    select(
                        petitions.c.id,
                        petitions.c.status,
                        petitions.c.correlation_id,
                        petitions.c.resolution_event_id,
                    ).where(petitions.c.tracking_token_hash == hash_token(token))
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise LookupError("no petition for this token")
        if row["status"] != "resolved" or row["resolution_event_id"] is None:
            raise FeedbackNotExpected(row["status"])
        changed = await conn.execute(
            update(petitions)
            .where(and_(petitions.c.id == row["id"], petitions.c.status == "resolved"))
            .values(status="feedback_given", status_changed_at=now)
        )
        if changed.rowcount != 1:
            raise FeedbackNotExpected("feedback_given")
        resolution_id = uuid.UUID(row["resolution_event_id"])
        event = FeedbackGiven(
            # Derived from the resolution: one answer per resolution, even if replayed.
            event_id=derived_id(row["id"], resolution_id, "feedback_given"),
            occurred_at=now,
            petition_id=uuid.UUID(row["id"]),
            producer=PRODUCER,
            correlation_id=uuid.UUID(row["correlation_id"]),
            causation_id=resolution_id,
            resolved=resolved,
            comment=comment,
        )
        await conn.execute(
            insert(public_timeline).values(
                petition_id=row["id"],
                event_id=str(event.event_id),
                kind="feedback_given",
                occurred_at=now,
                message_vi="Bạn cho biết: "
                + ("đã được giải quyết." if resolved else "chưa được giải quyết."),
                message_en="You said: " + ("resolved." if resolved else "not resolved."),
                detail=comment,
            )
        )
        await add_to_outbox(conn, messaging.outbox, event)
    return "feedback_given"


async def contact_for(engine: AsyncEngine, petition_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(contacts, petitions.c.language)
                    .join(petitions, petitions.c.id == contacts.c.petition_id)
                    .where(contacts.c.petition_id == petition_id)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def count_petitions(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(petitions)) or 0)
