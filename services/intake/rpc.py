"""Answers notify's contact look-up: the resident's contact, used for one delivery and never
stored elsewhere. Nothing here logs the contact itself.

The tracking link in the reply carries a token minted for this look-up: intake keeps only the
hashes of tracking tokens, so it cannot hand back the one shown at submission. Each message with a
link thus carries its own token for the same petition; every one of them keeps opening it.

Two forms on one subject: `{"petition_id": …}` for one petition, and `{"petition_ids": […]}`
for the batch notify's delivery worker is about to send (one query instead of one round trip
per message, which is what kept a burst of submissions waiting)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake import store
from services.intake.models import contacts, petitions
from services.intake.petitions import tracking_url
from services.intake.recovery import only_channel, pending_recoveries
from shared.rpc import (
    ContactLookupRequest,
    ContactReply,
    ContactsReply,
    RecoveryContact,
    reply_bytes,
)
from shared.streams import RPC_CONTACT_LOOKUP

log = structlog.get_logger(__name__)


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
                    )
                    .join(contacts, contacts.c.petition_id == petitions.c.id, isouter=True)
                    .where(petitions.c.id.in_(list(petition_ids)))
                )
            )
            .mappings()
            .all()
        )
    return {str(r["id"]): dict(r) for r in rows}


def needs_link(row: Mapping[str, Any] | None) -> bool:
    """Whether the reply will carry a contact notify may write to, and so a tracking link."""
    return (
        row is not None
        and row["contact_erased_at"] is None
        and bool(row["wants_updates"])
        and bool(row["email"] or row["phone"])
    )


async def mint_links(
    engine: AsyncEngine, rows: Mapping[str, Mapping[str, Any]], public_url: str, now: datetime
) -> dict[str, str]:
    """A fresh tracking link for each petition whose reply needs one, all in one transaction."""
    wanted = [pid for pid, row in rows.items() if needs_link(row)]
    if not wanted:
        return {}
    async with engine.begin() as conn:
        return {
            pid: tracking_url(public_url, await store.mint_tracking_token(conn, pid, now))
            for pid in wanted
        }


async def recovery_contacts(
    engine: AsyncEngine,
    rows: Mapping[str, Mapping[str, Any]],
    asked: ContactLookupRequest | None,
    public_url: str,
    now: datetime,
) -> dict[str, RecoveryContact]:
    """For each petition notify sends a recovered link for, and a resident recently asked
    about with a matching contact: that contact alone, with a link minted for it."""
    wanted = [str(i) for i in (asked.recover_links or [])] if asked else []
    wanted = [pid for pid in wanted if pid in rows and rows[pid]["contact_erased_at"] is None]
    pending = await pending_recoveries(engine, wanted, now)
    if not pending:
        return {}
    found = {}
    async with engine.begin() as conn:
        for pid, channel in pending.items():
            only = only_channel(rows[pid], channel)
            if not (only["email"] or only["phone"]):
                continue
            token = await store.mint_tracking_token(conn, pid, now)
            address = {channel: only[channel]}
            found[pid] = RecoveryContact(**address, tracking_url=tracking_url(public_url, token))
    return found


def contact_reply(
    row: Mapping[str, Any] | None, link: str | None, recovery: RecoveryContact | None = None
) -> ContactReply:
    """What notify is told about one petition's resident, with the link minted for it."""
    if row is not None and row["contact_erased_at"] is not None:
        # The resident erased their data: say so, so that nobody tries another channel.
        return ContactReply(found=True, erased=True, wants_updates=False)
    if row is None or row["wants_updates"] is None:
        return ContactReply(found=False)
    reply = ContactReply(
        found=True,
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        language=row["language"],
        wants_updates=bool(row["wants_updates"]),
        tracking_url=link,
    )
    if recovery is None:
        return reply
    # Set only when there is one: the reply is sent with the fields that were set.
    return ContactReply(**reply.model_dump(exclude_unset=True), recovery=recovery)


def _request(body: bytes) -> ContactLookupRequest | None:
    try:
        return ContactLookupRequest.model_validate_json(body)
    except ValidationError:
        return None


def _asks_bulk(body: bytes) -> bool:
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(raw, dict) and "petition_ids" in raw


async def lookup_contact(
    engine: AsyncEngine, public_url: str, body: bytes, *, now: datetime
) -> ContactReply | ContactsReply:
    """`{"petition_id": …}` → the contact with `found: true`; `found: true, erased: true` and no
    contact fields once the resident erased it; `found: false` for anything else (unknown
    petition, malformed request): the caller decides what to do without one.

    `{"petition_ids": […]}` (at most `MAX_IDS`) → `{"contacts": {petition id: the same
    answer}}` for every id asked; `{"contacts": {}}` for a malformed list."""
    request = _request(body)
    if request is None or request.petition_ids is not None:
        if request is None and not _asks_bulk(body):
            log.warning("contact_lookup_malformed")
            return ContactReply(found=False)
        return await _lookup_many(engine, public_url, request, now)
    if request.petition_id is None:
        log.warning("contact_lookup_malformed")
        return ContactReply(found=False)
    petition_id = str(request.petition_id)
    row = await store.contact_for(engine, petition_id)
    rows = {petition_id: row} if row else {}
    links = await mint_links(engine, rows, public_url, now)
    recovered = await recovery_contacts(engine, rows, request, public_url, now)
    reply = contact_reply(row, links.get(petition_id), recovered.get(petition_id))
    if reply.erased:
        log.info("contact_lookup_erased", petition_id=petition_id)
    elif not reply.found:
        log.info("contact_lookup_unknown", petition_id=petition_id)
    else:
        log.info("contact_lookup_answered", petition_id=petition_id)
    return reply


async def _lookup_many(
    engine: AsyncEngine, public_url: str, request: ContactLookupRequest | None, now: datetime
) -> ContactsReply:
    if request is None or request.petition_ids is None:
        log.warning("contact_lookup_malformed")
        return ContactsReply(contacts={})
    asked = list(dict.fromkeys(str(i) for i in request.petition_ids))
    rows = await contacts_for(engine, asked) if asked else {}
    links = await mint_links(engine, rows, public_url, now)
    recovered = await recovery_contacts(engine, rows, request, public_url, now)
    answers = {
        pid: contact_reply(rows.get(pid), links.get(pid), recovered.get(pid)) for pid in asked
    }
    log.info(
        "contact_lookup_answered_bulk",
        asked=len(asked),
        found=sum(1 for a in answers.values() if a.found and not a.erased),
    )
    return ContactsReply(contacts=answers)


def register_contact_lookup(
    broker: NatsBroker, engine: AsyncEngine, public_url: str, now: Callable[[], datetime]
) -> None:
    # A queue group, so that with several intake replicas exactly one answers each request.
    @broker.subscriber(RPC_CONTACT_LOOKUP, queue="intake-contact-lookup", title="contact-lookup")
    # The raw message, not a decoded body: a malformed request must still get an answer.
    async def contact_lookup(msg: NatsMessage) -> bytes:
        return reply_bytes(await lookup_contact(engine, public_url, msg.body, now=now()))
