"""A lost tracking link found again: a resident gives the petition's reference and the email or
phone they left, and a new link goes to that contact, through notify like every message to a
resident.

The answer to the request is the same whether or not anything matched, and the matching runs
after the answer is sent (`recover_link`), so neither the words nor the time tell a stranger
whether a reference and a contact belong together. Only a match queues `TrackingLinkRequested`
(which contact matched, never the contact) and records it in `link_recoveries`; notify's contact
look-up then carries a freshly minted link for that contact (`pending_recoveries`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from fastapi import BackgroundTasks
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.models import contacts, link_recoveries, messaging, petitions
from services.intake.petitions import parse_reference
from services.intake.throttle import (
    PublicThrottle,
    RateLimit,
    address_key,
    contact_keys,
    normalise_email,
    normalise_phone,
)
from shared.events import TrackingLinkRequested
from shared.messaging import add_to_outbox
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

PRODUCER = "intake"
Channel = Literal["email", "phone"]
# Asking for a petition's link again, whoever asks and from wherever: a few tries an hour (a
# typo or two), never a way to flood the resident's inbox.
PER_REFERENCE = RateLimit(3, timedelta(hours=1))
# How long a matched request lets notify's look-up carry a link to the matched contact: long
# enough for the message to leave after retries and quiet hours, short enough to end.
RECOVERY_VALID = timedelta(hours=24)

NEUTRAL_VI = (
    "Nếu mã số và thông tin liên hệ khớp với một phản ánh, chúng tôi sẽ gửi liên kết theo dõi "
    "mới đến email hoặc số điện thoại đó trong ít phút."
)
NEUTRAL_EN = (
    "If the reference and the contact match a petition, a new tracking link is on its way to "
    "that email or phone within a few minutes."
)


def reference_key(reference: str) -> str:
    """What the per-reference limit counts: the reference as it reads once canonical."""
    return f"ref:{parse_reference(reference) or reference.strip().upper()[:40]}"


def matching_channel(given: str, email: str | None, phone: str | None) -> Channel | None:
    """Which of the petition's stored contacts `given` is: an email compared case-insensitively,
    a phone number by its digits."""
    if "@" in given:
        wanted = normalise_email(given)
        return "email" if wanted is not None and wanted == normalise_email(email) else None
    digits = normalise_phone(given)
    if digits is None or len(digits) < 6:
        return None
    return "phone" if digits == normalise_phone(phone) else None


async def recover_link(engine: AsyncEngine, *, reference: str, contact: str, now: datetime) -> None:
    """Queue a new link for the petition's own contact if `contact` is it; else nothing. Runs
    after the answer was sent; nothing it does shows in that answer. Logs the petition, never
    the contact."""
    canonical = parse_reference(reference)
    if canonical is None:
        log.info("tracking_link_recovery_unmatched")
        return
    async with engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    select(
                        petitions.c.id,
                        petitions.c.correlation_id,
                        petitions.c.contact_erased_at,
                        contacts.c.email,
                        contacts.c.phone,
                    )
                    .join(contacts, contacts.c.petition_id == petitions.c.id, isouter=True)
                    .where(petitions.c.reference == canonical)
                )
            )
            .mappings()
            .first()
        )
        channel = (
            matching_channel(contact, row["email"], row["phone"])
            if row is not None and row["contact_erased_at"] is None
            else None
        )
        if row is None or channel is None:
            log.info("tracking_link_recovery_unmatched")
            return
        event = TrackingLinkRequested(
            event_id=uuid.uuid4(),
            occurred_at=now,
            petition_id=row["id"],
            producer=PRODUCER,
            correlation_id=row["correlation_id"],
            channel=channel,
        )
        # Requests past their use go as new ones come: the table stays small.
        await conn.execute(
            delete(link_recoveries).where(link_recoveries.c.requested_at <= now - RECOVERY_VALID)
        )
        await conn.execute(
            insert(link_recoveries).values(
                id=str(event.event_id), petition_id=row["id"], channel=channel, requested_at=now
            )
        )
        await add_to_outbox(conn, messaging.outbox, event)
    log.info("tracking_link_recovery_queued", petition_id=row["id"], channel=channel)


async def recover_link_after_answer(
    runtime: Runtime, *, reference: str, contact: str, now: datetime
) -> None:
    """`recover_link` once the answer has gone, and the relay woken for its event. A failure
    here reaches nobody: it is logged (its kind only, never a value) and the resident asks
    again."""
    try:
        await recover_link(runtime.engine, reference=reference, contact=contact, now=now)
    except Exception as exc:
        log.warning("tracking_link_recovery_failed", error=type(exc).__name__)
        return
    runtime.relay.wake()


async def ask_for_link(
    *,
    reference: str,
    contact: str,
    client: str,
    throttle: PublicThrottle,
    runtime: Runtime,
    tasks: BackgroundTasks,
) -> None:
    """Count the request (per address, per contact, per reference), then look for a match
    after the answer has gone: the answer and its timing are the same either way."""
    email, phone = (contact, None) if "@" in contact else (None, contact)
    await throttle.admit(
        [address_key(client), *contact_keys(email, phone)],
        extra={reference_key(reference): PER_REFERENCE},
    )
    tasks.add_task(
        recover_link_after_answer,
        runtime,
        reference=reference,
        contact=contact,
        now=runtime.clock.now(),
    )


async def pending_recoveries(
    engine: AsyncEngine, petition_ids: Sequence[str], now: datetime
) -> dict[str, Channel]:
    """The petitions among `petition_ids` with a recent matched request, and which contact
    matched (the latest request's, when there are several)."""
    if not petition_ids:
        return {}
    r = link_recoveries
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(r.c.petition_id, r.c.channel)
                .where(
                    r.c.petition_id.in_(list(petition_ids)),
                    r.c.requested_at > now - RECOVERY_VALID,
                )
                .order_by(r.c.requested_at)
            )
        ).all()
    found: dict[str, Any] = {}
    for petition_id, channel in rows:
        found[str(petition_id)] = channel
    return found


def only_channel(row: Mapping[str, Any], channel: Channel) -> dict[str, Any]:
    """The contact row with only the matched address left: the link goes there and nowhere else."""
    return {
        **row,
        "email": row["email"] if channel == "email" else None,
        "phone": row["phone"] if channel == "phone" else None,
    }
