"""Events routing publishes about a petition's case."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from .base import Event, versioned

AssignReason = Literal[
    "initial", "no_member", "reassigned", "reopened", "escalated", "declined", "absent"
]
EscalationReason = Literal[
    "deadline_passed",
    "not_resolved",
    "resident_request",
    "nobody_available",
    "declined",
    "leader_decision",
]


class CaseEvent(Event):
    case_id: uuid.UUID


class CaseAssigned(CaseEvent):
    """A case now rests with one member at a rung of the ladder."""

    subject: ClassVar[str] = versioned("assigned")
    rung: int
    unit_id: str
    member_id: str
    member_username: str
    member_name: str
    member_email: str | None = None
    reason: AssignReason = "initial"
    due_at: datetime | None = None
    actor: str | None = None


class CaseAccepted(CaseEvent):
    """The holder took the case on."""

    subject: ClassVar[str] = versioned("accepted")
    member_id: str


class CaseNoteAdded(CaseEvent):
    """The holder wrote an internal note (staff only, never shown to the resident)."""

    subject: ClassVar[str] = versioned("note_added")
    member_id: str
    note: str


class CaseResolved(CaseEvent):
    """The holder says the matter is settled, and explains how."""

    subject: ClassVar[str] = versioned("resolved")
    member_id: str
    explanation: str


class CaseReopened(CaseEvent):
    """The resident said the matter is not settled; the case goes back to work."""

    subject: ClassVar[str] = versioned("reopened")
    from_rung: int
    comment: str | None = None


class CaseEscalated(CaseEvent):
    """Responsibility moved up the ladder; the lower rung stays in the history."""

    subject: ClassVar[str] = versioned("escalated")
    from_rung: int
    to_rung: int
    reason: EscalationReason
    actor: str | None = None


class CaseClosed(CaseEvent):
    """The case is finished: the resident confirmed, or stayed quiet after resolution."""

    subject: ClassVar[str] = versioned("closed")
    reason: Literal["resident_confirmed", "quiet_period", "withdrawn"]
