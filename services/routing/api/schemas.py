"""The shapes the staff API reads and answers: its contract, as the OpenAPI document shows it.

No `from __future__ import annotations`: pydantic and FastAPI read these annotations.
"""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import RowMapping

from services.routing.actions import CaseView, facts
from services.routing.cases import Organisation
from services.routing.lifecycle import Status
from services.routing.permissions import Action, permissions
from shared.auth import Role, Staff
from shared.events.routing import DeclineReason
from shared.geo import map_link
from shared.web import Timestamp


class Token(BaseModel):
    """An access token for `Authorization: Bearer …`, valid `expires_in` seconds (at most 15
    minutes), and the refresh token that gets the next one (`grant_type=refresh_token`) for
    as long as the session lasts (`POST /api/v1/auth/refresh`): until `POST /api/v1/auth/signout`, the end of its 12 hours,
    or a change to the person (deactivated, another role or unit, a new password)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int
    refresh_token: str


class Me(BaseModel):
    """The signed-in person, and the units whose petitions they may see (none listed for an
    administrator, who sees every unit)."""

    username: str
    member_id: str | None
    role: Role
    unit_id: str | None
    name: str
    units: list[str]

    @classmethod
    def of(cls, staff: Staff) -> "Me":
        return cls(
            username=staff.username,
            member_id=staff.member_id,
            role=staff.role,
            unit_id=staff.unit_id,
            name=staff.name,
            units=list(staff.units),
        )


class Case(BaseModel):
    """A case as staff see it, with what the caller may do to it now (`allowed_actions`: the
    same answer the workspace pages show as buttons)."""

    id: uuid.UUID
    petition_id: uuid.UUID
    reference: str
    unit_id: str
    category_id: str
    title: str
    description: str
    location: str | None
    latitude: float | None = Field(default=None, description="The point the resident gave.")
    longitude: float | None = None
    map_url: str | None = Field(
        default=None, description="The point on openstreetmap.org, when there is one."
    )
    status: Status
    rung: int
    holder_member_id: str | None
    holder_username: str | None
    holder_name: str | None
    holder_unit_id: str | None
    flag: str | None
    due_at: datetime | None
    ack_due_at: datetime | None
    question_id: uuid.UUID | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    version: int
    allowed_actions: list[Action]

    @classmethod
    def of(cls, case: RowMapping, org: Organisation, allowed: frozenset[str]) -> "Case":
        holder = org.member(case["holder_member_id"]) if case["holder_member_id"] else None
        fields = {name: case[name] for name in cls.model_fields if name in case}
        return cls(
            **fields,
            holder_username=holder.username if holder else None,
            holder_name=holder.name if holder else None,
            map_url=map_link(case.get("latitude"), case.get("longitude")),
            allowed_actions=sorted(allowed),
        )

    @classmethod
    def for_staff(cls, case: RowMapping, org: Organisation, staff: Staff) -> "Case":
        return cls.of(case, org, frozenset(permissions(staff, facts(case, org))))


class HistoryLine(BaseModel):
    """One line of a case's history: an event routing wrote or one it received."""

    event_id: str
    kind: str
    at: datetime
    actor: str | None
    member_id: str | None
    rung: int | None
    detail: dict[str, Any]


class Note(BaseModel):
    member_id: str
    note: str
    at: datetime


class CaseDetail(Case):
    """A case with its history and notes."""

    history: list[HistoryLine]
    notes: list[Note]

    @classmethod
    def of_view(cls, view: CaseView) -> "CaseDetail":
        base = Case.of(view.case, view.org, view.allowed)
        return cls(
            **base.model_dump(),
            history=[HistoryLine.model_validate(h) for h in view.history],
            notes=[Note.model_validate(n) for n in view.notes],
        )


# Words, not only spaces: the actions refuse a text that is blank once stripped, and the
# contract says so. Spelled out because Python's and JavaScript's `\s` differ on a few
# characters (U+001C-U+001F, U+0085, U+FEFF): none of them counts as a word.
WORDS = r"[^\s\x1c-\x1f\x85\ufeff]"


class TokenForm(BaseModel):
    """Sign-in as an OAuth2 password form (`grant_type=password` may be sent, or left out)."""

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)
    grant_type: Literal["password"] = "password"


class RefreshForm(BaseModel):
    """A session's next access token, as an OAuth2 refresh form (`grant_type=refresh_token`
    may be sent, or left out)."""

    refresh_token: str = Field(min_length=1, max_length=200)
    grant_type: Literal["refresh_token"] = "refresh_token"


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=5000, pattern=WORDS)


class ResolveIn(BaseModel):
    explanation: str = Field(min_length=1, max_length=5000, pattern=WORDS)


class ReassignIn(BaseModel):
    """The new holder, by member id or by username."""

    member_id: str | None = None
    username: str | None = None


class DeclineIn(BaseModel):
    reason_code: DeclineReason
    comment: str | None = Field(default=None, max_length=2000)


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000, pattern=WORDS)


class EscalateIn(BaseModel):
    comment: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, pattern=WORDS)


class AbsenceIn(BaseModel):
    """Away from `from` until `until` (open-ended without it)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Timestamp = Field(alias="from")
    until: Timestamp | None = None


class Absence(BaseModel):
    member_id: str
    away_from: datetime
    away_until: datetime | None


class PasswordChange(BaseModel):
    """A new password for the signed-in person, with the current one. The new one must have
    12 to 128 characters (after Unicode NFKC; spaces allowed, no composition rules), not be a
    common or breached password, nor the person's username or name."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordChanged(BaseModel):
    """The password is changed; `sessions_ended` other sessions of the person ended at once
    (this one goes on)."""

    sessions_ended: int


SignInOutcome = Literal["success", "wrong_password", "throttled", "deactivated"]


class SignInAttempt(BaseModel):
    """One sign-in attempt: when (UTC), from which address and user agent (cut to 200
    characters), and how it ended."""

    at: Timestamp
    outcome: SignInOutcome
    address: str
    user_agent: str


class SignInHistory(BaseModel):
    """A person's sign-in attempts of the last 90 days, newest first (at most 100)."""

    member_id: str
    attempts: list[SignInAttempt]


class AccountLinkIn(BaseModel):
    """What the one-time link is for: `reset` (a forgotten password) or `invite` (a new
    member's first password)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["invite", "reset"] = "reset"


class AccountLink(BaseModel):
    """A one-time link was asked for: notify emails it to the member's work address. It
    works once, until `expires_at` (24 hours); the token is never shown here."""

    link_id: str
    member_id: str
    kind: Literal["invite", "reset"]
    expires_at: Timestamp
