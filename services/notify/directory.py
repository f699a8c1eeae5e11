"""Asking the services that own people's details, just before sending: intake for a resident's
contact (the only copy lives there), routing for members' names and work addresses. Answers
serve one delivery and are never stored."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faststream.nats import NatsBroker

from shared.streams import RPC_CONTACT_LOOKUP, RPC_ROUTING_MEMBERS, RPC_ROUTING_UNITS

# Petitions per bulk contact look-up; intake answers at most this many at once.
MAX_CONTACTS_PER_REQUEST = 500


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


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    email: str | None
    unit_id: str | None
    role: str
    active: bool


def parse_contact(reply: Mapping[str, Any]) -> Contact | None:
    """intake's answer; None when there is nobody to contact: an unknown petition, or a resident
    whose data was erased. A resident who withdrew consent comes back with `wants_updates`
    false, and is never contacted either."""
    if not reply.get("found") or reply.get("erased"):
        return None
    language = str(reply.get("language") or "vi")
    return Contact(
        name=reply.get("name") or None,
        email=reply.get("email") or None,
        phone=reply.get("phone") or None,
        language=language if language in ("vi", "en") else "vi",
        wants_updates=bool(reply.get("wants_updates")),
        tracking_url=reply.get("tracking_url") or None,
    )


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    parent_id: str | None


def parse_contacts(
    reply: Mapping[str, Any], petition_ids: Sequence[str]
) -> dict[str, Contact | None]:
    """intake's answer to a bulk look-up: every asked petition, None where there is nobody to
    contact (a petition missing from the answer is one intake does not know)."""
    contacts = reply.get("contacts")
    if not isinstance(contacts, dict):
        raise DirectoryUnavailable("reply has no contacts object")
    found: dict[str, Contact | None] = {}
    for pid in petition_ids:
        one = contacts.get(pid)
        found[pid] = parse_contact(one) if isinstance(one, dict) else None
    return found


def parse_units(reply: Mapping[str, Any]) -> list[Unit]:
    units = reply.get("units")
    if not isinstance(units, list):
        raise DirectoryUnavailable("reply has no units list")
    return [
        Unit(id=str(u["id"]), name=str(u.get("name") or u["id"]), parent_id=u.get("parent_id"))
        for u in units
        if isinstance(u, dict) and u.get("id")
    ]


def parse_members(reply: Mapping[str, Any]) -> list[Member]:
    members = reply.get("members")
    if not isinstance(members, list):
        raise DirectoryUnavailable("reply has no members list")
    return [
        Member(
            id=str(m["id"]),
            name=str(m.get("name") or m["id"]),
            email=m.get("email") or None,
            unit_id=m.get("unit_id"),
            role=str(m.get("role") or "member"),
            active=bool(m.get("active", True)),
        )
        for m in members
        if isinstance(m, dict) and m.get("id")
    ]


class Directory:
    def __init__(self, broker: NatsBroker, *, timeout_s: float) -> None:
        self._broker = broker
        self._timeout_s = timeout_s

    async def _ask(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await self._broker.request(body, subject, timeout=self._timeout_s)
            data = json.loads(reply.body)
        except Exception as exc:
            raise DirectoryUnavailable(f"{subject}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise DirectoryUnavailable(f"{subject}: reply is not a JSON object")
        return data

    async def contacts(self, petition_ids: Sequence[str]) -> dict[str, Contact | None]:
        """Ask intake, the only keeper of residents' contacts, for several at once (one request
        per `MAX_CONTACTS_PER_REQUEST`): what the delivery worker asks for a claimed batch,
        instead of one round trip per message. The answers serve this round's sends."""
        ids = list(dict.fromkeys(petition_ids))
        found: dict[str, Contact | None] = {}
        for start in range(0, len(ids), MAX_CONTACTS_PER_REQUEST):
            chunk = ids[start : start + MAX_CONTACTS_PER_REQUEST]
            reply = await self._ask(RPC_CONTACT_LOOKUP, {"petition_ids": chunk})
            found.update(parse_contacts(reply, chunk))
        return found

    async def units(self) -> list[Unit]:
        """The area tree as routing keeps it."""
        return parse_units(await self._ask(RPC_ROUTING_UNITS, {}))

    async def members(
        self, *, unit_id: str | None = None, member_ids: Sequence[str] = ()
    ) -> list[Member]:
        """The active members serving `unit_id`, or the members with these ids."""
        body: dict[str, Any] = {"unit_id": unit_id} if unit_id else {"member_ids": list(member_ids)}
        return parse_members(await self._ask(RPC_ROUTING_MEMBERS, body))
