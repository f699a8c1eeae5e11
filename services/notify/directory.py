"""Asking the services that own people's details, just before sending: intake for a resident's
contact (the only copy lives there), routing for members' names and work addresses and for a
one-time account link. Answers
serve one delivery and are never stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from faststream.nats import NatsBroker
from pydantic import BaseModel

from shared.rpc import (
    MAX_IDS,
    AccountLinkReply,
    AccountLinkRequest,
    ContactLookupRequest,
    ContactReply,
    ContactsReply,
    MemberLookupReply,
    MemberLookupRequest,
    RecoveryContact,
    UnitLookupReply,
    UnitLookupRequest,
)
from shared.streams import (
    RPC_CONTACT_LOOKUP,
    RPC_ROUTING_ACCOUNT_LINK,
    RPC_ROUTING_MEMBERS,
    RPC_ROUTING_UNITS,
)

# Petitions per bulk contact look-up; intake answers at most this many at once.
MAX_CONTACTS_PER_REQUEST = MAX_IDS

R = TypeVar("R", bound=BaseModel)


class DirectoryUnavailable(Exception):
    """The other service did not answer (down, slow, or a malformed reply): worth a retry."""


@dataclass(frozen=True)
class Contact:
    name: str | None
    email: str | None
    phone: str | None
    language: str
    wants_updates: bool
    tracking_url: str | None
    # The one contact a resident gave when asking for their link again, with its own link;
    # only when asked for (`Directory.contacts(recover_links=…)`) and the request is recent.
    recovery: RecoveryContact | None = None


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    email: str | None
    unit_id: str | None
    role: str
    active: bool


def parse_contact(reply: ContactReply) -> Contact | None:
    """intake's answer; None when there is nobody to contact: an unknown petition, or a resident
    whose data was erased. A resident who withdrew consent comes back with `wants_updates`
    false, and is never contacted either."""
    if not reply.found or reply.erased:
        return None
    return Contact(
        name=reply.name or None,
        email=reply.email or None,
        phone=reply.phone or None,
        language=reply.language or "vi",
        wants_updates=bool(reply.wants_updates),
        tracking_url=reply.tracking_url or None,
        recovery=reply.recovery,
    )


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    parent_id: str | None


def parse_contacts(reply: ContactsReply, petition_ids: Sequence[str]) -> dict[str, Contact | None]:
    """intake's answer to a bulk look-up: every asked petition, None where there is nobody to
    contact (a petition missing from the answer is one intake does not know)."""
    found: dict[str, Contact | None] = {}
    for pid in petition_ids:
        one = reply.contacts.get(pid)
        found[pid] = parse_contact(one) if one is not None else None
    return found


def parse_units(reply: UnitLookupReply) -> list[Unit]:
    return [Unit(id=u.id, name=u.name or u.id, parent_id=u.parent_id) for u in reply.units]


def parse_members(reply: MemberLookupReply) -> list[Member]:
    return [
        Member(
            id=m.id,
            name=m.name or m.id,
            email=m.email or None,
            unit_id=m.unit_id,
            role=m.role,
            active=m.active,
        )
        for m in reply.members
    ]


class Directory:
    def __init__(self, broker: NatsBroker, *, timeout_s: float) -> None:
        self._broker = broker
        self._timeout_s = timeout_s

    async def _ask(self, request: BaseModel, subject: str, answer: type[R]) -> R:
        """Send `request` on `subject` and parse the answer as `answer`; no answer in time, or
        one that does not fit the contract, is `DirectoryUnavailable` (worth a retry)."""
        body = request.model_dump_json(exclude_unset=True).encode()
        try:
            reply = await self._broker.request(body, subject, timeout=self._timeout_s)
            return answer.model_validate_json(reply.body)
        except Exception as exc:
            raise DirectoryUnavailable(f"{subject}: {type(exc).__name__}: {exc}") from exc

    async def contacts(
        self, petition_ids: Sequence[str], *, recover_links: Sequence[str] = ()
    ) -> dict[str, Contact | None]:
        """Ask intake, the only keeper of residents' contacts, for several at once (one request
        per `MAX_CONTACTS_PER_REQUEST`): what the delivery worker asks for a claimed batch,
        instead of one round trip per message. The answers serve this round's sends."""
        ids = list(dict.fromkeys(petition_ids))
        found: dict[str, Contact | None] = {}
        for start in range(0, len(ids), MAX_CONTACTS_PER_REQUEST):
            chunk = ids[start : start + MAX_CONTACTS_PER_REQUEST]
            recover = [uuid.UUID(i) for i in chunk if i in recover_links]
            request = (
                ContactLookupRequest(
                    petition_ids=[uuid.UUID(i) for i in chunk], recover_links=recover
                )
                if recover
                else ContactLookupRequest(petition_ids=[uuid.UUID(i) for i in chunk])
            )
            reply = await self._ask(request, RPC_CONTACT_LOOKUP, ContactsReply)
            found.update(parse_contacts(reply, chunk))
        return found

    async def account_link(self, link_id: str) -> AccountLinkReply:
        """A one-time account link with a token minted for this message (`found: false` when
        used or expired): put in the one email, never stored."""
        request = AccountLinkRequest(link_id=link_id)
        return await self._ask(request, RPC_ROUTING_ACCOUNT_LINK, AccountLinkReply)

    async def units(self) -> list[Unit]:
        """The area tree as routing keeps it."""
        return parse_units(await self._ask(UnitLookupRequest(), RPC_ROUTING_UNITS, UnitLookupReply))

    async def members(
        self, *, unit_id: str | None = None, member_ids: Sequence[str] = ()
    ) -> list[Member]:
        """The active members serving `unit_id`, or the members with these ids."""
        request = (
            MemberLookupRequest(unit_id=unit_id)
            if unit_id
            else MemberLookupRequest(member_ids=list(member_ids))
        )
        return parse_members(await self._ask(request, RPC_ROUTING_MEMBERS, MemberLookupReply))
