"""Answers notify's member look-up: who serves a unit (for the meeting digest), or given members'
names and work addresses (for reminders, escalations and overdue notices); and its unit look-up:
the area tree, so notify can name units and add up a unit with those below it; and a one-time
account link, minted as notify sends it. Staff data only."""

from __future__ import annotations

import structlog
from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing import models
from services.routing.accounts import Accounts
from shared.rpc import (
    AccountLinkReply,
    AccountLinkRequest,
    MemberInfo,
    MemberLookupReply,
    MemberLookupRequest,
    UnitInfo,
    UnitLookupReply,
    reply_bytes,
)
from shared.streams import RPC_ROUTING_ACCOUNT_LINK, RPC_ROUTING_MEMBERS, RPC_ROUTING_UNITS

log = structlog.get_logger(__name__)


async def lookup_members(engine: AsyncEngine, body: bytes) -> MemberLookupReply:
    """`{"unit_id": …}` → the unit's active members; `{"member_ids": […]}` → those members
    (active or not, so a notice about an old case still finds its addressee's name).
    Anything malformed gets an empty list, never silence."""
    m = models.members
    try:
        request = MemberLookupRequest.model_validate_json(body)
    except ValidationError:
        log.warning("member_lookup_malformed")
        return MemberLookupReply(members=[])
    columns = (m.c.id, m.c.name, m.c.email, m.c.unit_id, m.c.role, m.c.active)
    if request.unit_id:
        query = select(*columns).where(and_(m.c.unit_id == request.unit_id, m.c.active.is_(True)))
    elif request.member_ids:
        query = select(*columns).where(m.c.id.in_(request.member_ids))
    else:
        return MemberLookupReply(members=[])
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(m.c.role, m.c.name))).mappings().all()
    return MemberLookupReply(members=[MemberInfo.model_validate(dict(r)) for r in rows])


async def lookup_units(engine: AsyncEngine) -> UnitLookupReply:
    """The whole area tree: every unit's id, name, kind and parent (a few thousand rows at most)."""
    u = models.units
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(select(u.c.id, u.c.name, u.c.kind, u.c.parent_id).order_by(u.c.id)))
            .mappings()
            .all()
        )
    return UnitLookupReply(units=[UnitInfo.model_validate(dict(r)) for r in rows])


def register_member_lookup(broker: NatsBroker, engine: AsyncEngine) -> None:
    # A queue group, so that with several routing replicas exactly one answers each request.
    @broker.subscriber(RPC_ROUTING_MEMBERS, queue="routing-member-lookup", title="member-lookup")
    async def member_lookup(msg: NatsMessage) -> bytes:
        return reply_bytes(await lookup_members(engine, msg.body))


def register_unit_lookup(broker: NatsBroker, engine: AsyncEngine) -> None:
    @broker.subscriber(RPC_ROUTING_UNITS, queue="routing-unit-lookup", title="unit-lookup")
    async def unit_lookup(msg: NatsMessage) -> bytes:
        return reply_bytes(await lookup_units(engine))


def register_account_links(broker: NatsBroker, accounts: Accounts) -> None:
    """notify asks for a one-time link just before emailing it: a token is minted for that
    message (routing keeps its hash), so it is never on the stream nor stored by notify."""

    @broker.subscriber(RPC_ROUTING_ACCOUNT_LINK, queue="routing-account-link", title="account-link")
    async def account_link(msg: NatsMessage) -> bytes:
        try:
            request = AccountLinkRequest.model_validate_json(msg.body)
        except ValidationError:
            log.warning("account_link_malformed")
            return reply_bytes(AccountLinkReply(found=False))
        return reply_bytes(await accounts.mint_link(request.link_id))
