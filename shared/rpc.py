"""The request/reply contracts on core NATS (outside the stream): what notify asks intake and
routing just before sending, and what they answer. Both sides parse and build these models,
and the AsyncAPI document is generated from them, so the three cannot drift apart.

Replies are sent with only the fields that were set (`reply_bytes`): an unknown petition is
`{"found": false}`, not a row of nulls, and a resident who erased their data is told apart
from one who never gave any.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.streams import (
    RPC_CONTACT_LOOKUP,
    RPC_ROUTING_ACCOUNT_LINK,
    RPC_ROUTING_MEMBERS,
    RPC_ROUTING_UNITS,
)

# Ids per bulk request; the asking side splits larger batches.
MAX_IDS = 500

Language = Literal["vi", "en"]
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ContactLookupRequest(_Message):
    """Either `petition_id` (one contact, answered with a `ContactReply`) or `petition_ids`
    (up to 500, answered with a `ContactsReply`)."""

    subject: ClassVar[str] = RPC_CONTACT_LOOKUP

    petition_id: uuid.UUID | None = None
    petition_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)
    # Among the petitions asked, those whose message is a lost tracking link sent again: the
    # reply carries `recovery` for each that a resident recently asked for (and no other).
    recover_links: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)


class RecoveryContact(_Message):
    """Where a recovered tracking link goes: the one contact the resident gave when asking
    (`email` or `phone`, the other absent) and a link minted for this message."""

    email: str | None = None
    phone: str | None = None
    tracking_url: str


class ContactReply(_Message):
    """One resident's contact, used for one delivery and never stored by the asker.
    `found: false` for an unknown petition; `erased: true` (and no contact) once the resident
    erased their data; `wants_updates: false` when they asked for no more messages.
    `tracking_url` carries a tracking token minted for this reply (intake keeps only hashes of
    tokens), set when the resident may be written to: every message has a link of its own."""

    found: bool
    erased: bool | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: Language | None = None
    wants_updates: bool | None = None
    tracking_url: str | None = None
    # Only when asked in `recover_links` and a resident's request for the link is recent: sent
    # to whatever `wants_updates` says, since the resident asked for this very message.
    recovery: RecoveryContact | None = None


class ContactsReply(_Message):
    """Every petition asked, by id, with its `ContactReply`."""

    contacts: dict[str, ContactReply]


class MemberLookupRequest(_Message):
    """Either `unit_id` (its active members) or `member_ids` (those members, active or not, so a
    notice about an old case still finds its addressee's name)."""

    subject: ClassVar[str] = RPC_ROUTING_MEMBERS

    unit_id: Id | None = None
    member_ids: list[Id] = Field(default_factory=list, max_length=MAX_IDS)


class MemberInfo(_Message):
    id: str
    name: str
    email: str | None = None
    unit_id: str | None = None
    role: Literal["member", "leader", "admin"] = "member"
    active: bool = True


class MemberLookupReply(_Message):
    members: list[MemberInfo]


class UnitLookupRequest(_Message):
    """Empty: the whole area tree."""

    subject: ClassVar[str] = RPC_ROUTING_UNITS


class UnitInfo(_Message):
    id: str
    name: str
    kind: str | None = None
    parent_id: str | None = None


class UnitLookupReply(_Message):
    units: list[UnitInfo]


class AccountLinkRequest(_Message):
    """The one-time link `link_id` names, to email it now: routing mints a fresh token (and
    keeps only its hash; an earlier token of the link stops working)."""

    subject: ClassVar[str] = RPC_ROUTING_ACCOUNT_LINK

    link_id: Id


class AccountLinkReply(_Message):
    """`found: false` for an unknown, used or expired link (nothing to send). Otherwise the
    link with its token, the member's name and work address: used for one message and never
    stored by the asker."""

    found: bool
    kind: Literal["invite", "reset"] | None = None
    url: str | None = None
    username: str | None = None
    name: str | None = None
    email: str | None = None
    expires_at: str | None = None


def reply_bytes(reply: BaseModel) -> bytes:
    """The reply as sent: only the fields that were set."""
    return reply.model_dump_json(exclude_unset=True).encode()
