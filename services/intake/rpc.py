"""Answers notify's contact look-up: the resident's contact, used for one delivery and never
stored elsewhere. Nothing here logs the contact itself."""

from __future__ import annotations

import json
import uuid
from typing import Any

import structlog
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import store
from services.intake.petitions import tracking_url
from shared.streams import RPC_CONTACT_LOOKUP

log = structlog.get_logger(__name__)


async def lookup_contact(engine: AsyncEngine, public_url: str, body: bytes) -> dict[str, Any]:
    """`{"petition_id": …}` → the contact with `found: true`; `found: true, erased: true` and no
    contact fields once the resident erased it; `found: false` for anything else (unknown
    petition, malformed request): the caller decides what to do without one."""
    try:
        request = json.loads(body)
        petition_id = str(uuid.UUID(str(request["petition_id"])))
    except (ValueError, KeyError, TypeError):
        log.warning("contact_lookup_malformed")
        return {"found": False}
    row = await store.contact_for(engine, petition_id)
    if row is not None and row["contact_erased_at"] is not None:
        # The resident erased their data: say so, so that nobody tries another channel.
        log.info("contact_lookup_erased", petition_id=petition_id)
        return {"found": True, "erased": True, "wants_updates": False}
    if row is None or row["wants_updates"] is None:
        log.info("contact_lookup_unknown", petition_id=petition_id)
        return {"found": False}
    log.info("contact_lookup_answered", petition_id=petition_id)
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


def register_contact_lookup(broker: NatsBroker, engine: AsyncEngine, public_url: str) -> None:
    # A queue group, so that with several intake replicas exactly one answers each request.
    @broker.subscriber(RPC_CONTACT_LOOKUP, queue="intake-contact-lookup", title="contact-lookup")
    # The raw message, not a decoded body: a malformed request must still get an answer.
    async def contact_lookup(msg: NatsMessage) -> dict[str, Any]:
        return await lookup_contact(engine, public_url, msg.body)
