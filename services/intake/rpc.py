"""Answers notify's contact look-up: the resident's contact, used for one delivery and never
stored elsewhere. Nothing here logs the contact itself.

Two forms on one subject: `{"petition_id": …}` for one petition, and `{"petition_ids": […]}`
for the batch notify's delivery worker is about to send (one query instead of one round trip
per message, which is what kept a burst of submissions waiting)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import store
from services.intake.models import contacts, petitions
from services.intake.petitions import tracking_url
from shared.streams import RPC_CONTACT_LOOKUP

log = structlog.get_logger(__name__)

# Petitions per bulk request; notify asks in chunks of at most this many.
MAX_IDS = 500


async def contacts_for(engine: AsyncEngine, petition_ids: Sequence[str]) -> dict[str, Any]:
    """`store.contact_for` for many petitions in one query: each known petition's language and
    erasure mark with its contact (None fields once erased), by petition id; unknown petitions
    are absent."""
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(
                        petitions.c.id,
                        petitions.c.language,
                        petitions.c.contact_erased_at,
                        contacts.c.name,
                        contacts.c.phone,
                        contacts.c.email,
                        contacts.c.wants_updates,
                        contacts.c.tracking_token,
                    )
                    .join(contacts, contacts.c.petition_id == petitions.c.id, isouter=True)
                    .where(petitions.c.id.in_(list(petition_ids)))
                )
            )
            .mappings()
            .all()
        )
    return {str(r["id"]): dict(r) for r in rows}


def contact_reply(row: Mapping[str, Any] | None, public_url: str) -> dict[str, Any]:
    """What notify is told about one petition's resident."""
    if row is not None and row["contact_erased_at"] is not None:
        # The resident erased their data: say so, so that nobody tries another channel.
        return {"found": True, "erased": True, "wants_updates": False}
    if row is None or row["wants_updates"] is None:
        return {"found": False}
    token = row["tracking_token"]
    return {
        "found": True,
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "language": row["language"],
        "wants_updates": bool(row["wants_updates"]),
        "tracking_url": tracking_url(public_url, token) if token else None,
    }


def _normalised(ids: Any) -> list[str]:
    if not isinstance(ids, list) or len(ids) > MAX_IDS:
        raise ValueError("petition_ids must be a list of at most 500 ids")
    return list(dict.fromkeys(str(uuid.UUID(str(i))) for i in ids))


async def lookup_contact(engine: AsyncEngine, public_url: str, body: bytes) -> dict[str, Any]:
    """`{"petition_id": …}` → the contact with `found: true`; `found: true, erased: true` and no
    contact fields once the resident erased it; `found: false` for anything else (unknown
    petition, malformed request): the caller decides what to do without one.

    `{"petition_ids": […]}` (at most `MAX_IDS`) → `{"contacts": {petition id: the same
    answer}}` for every id asked; `{"contacts": {}}` for a malformed list."""
    try:
        request = json.loads(body)
    except ValueError:
        request = None
    if isinstance(request, dict) and "petition_ids" in request:
        try:
            bulk = _normalised(request["petition_ids"])
        except (ValueError, TypeError):
            log.warning("contact_lookup_malformed")
            return {"contacts": {}}
        rows = await contacts_for(engine, bulk) if bulk else {}
        answers = {pid: contact_reply(rows.get(pid), public_url) for pid in bulk}
        log.info(
            "contact_lookup_answered_bulk",
            asked=len(bulk),
            found=sum(1 for a in answers.values() if a["found"] and not a.get("erased")),
        )
        return {"contacts": answers}
    try:
        petition_id = str(uuid.UUID(str(request["petition_id"])))
    except (ValueError, KeyError, TypeError):
        log.warning("contact_lookup_malformed")
        return {"found": False}
    reply = contact_reply(await store.contact_for(engine, petition_id), public_url)
    if reply.get("erased"):
        log.info("contact_lookup_erased", petition_id=petition_id)
    elif not reply["found"]:
        log.info("contact_lookup_unknown", petition_id=petition_id)
    else:
        log.info("contact_lookup_answered", petition_id=petition_id)
    return reply


def register_contact_lookup(broker: NatsBroker, engine: AsyncEngine, public_url: str) -> None:
    # A queue group, so that with several intake replicas exactly one answers each request.
    @broker.subscriber(RPC_CONTACT_LOOKUP, queue="intake-contact-lookup", title="contact-lookup")
    # The raw message, not a decoded body: a malformed request must still get an answer.
    async def contact_lookup(msg: NatsMessage) -> dict[str, Any]:
        return await lookup_contact(engine, public_url, msg.body)
