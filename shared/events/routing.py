"""Events routing publishes about a petition's case."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from .base import Event, versioned

AssignReason = Literal[
    "initial", "no_member", "reassigned", "reopened", "escalated", "declined", "absent"
]
DeclineReason = Literal[
    "not_my_area", "not_my_category", "conflict_of_interest", "needs_other_agency", "away"
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
    # Who held the case before this assignment (taken away by escalation, decline, absence…).
    previous_member_id: str | None = None


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
    from_member_id: str | None = None


class CaseClosed(CaseEvent):
    """The case is finished: the resident confirmed, or stayed quiet after resolution."""

    subject: ClassVar[str] = versioned("closed")
    reason: Literal["resident_confirmed", "quiet_period", "withdrawn"]


class CaseDeclined(CaseEvent):
    """The holder handed the case back, with a reason; routing re-routes it."""

    subject: ClassVar[str] = versioned("declined")
    member_id: str
    reason_code: DeclineReason
    comment: str | None = None


class CaseQuestionAsked(CaseEvent):
    """The holder asked the resident for information; the deadline clock stops."""

    subject: ClassVar[str] = versioned("question_asked")
    member_id: str
    question_id: uuid.UUID
    question: str
    max_wait_until: datetime | None = None


class CaseResumed(CaseEvent):
    """The clock runs again: the resident answered, or the longest wait passed."""

    subject: ClassVar[str] = versioned("resumed")
    reason: Literal["answered", "max_wait"]
    due_at: datetime | None = None


class CaseReminderDue(CaseEvent):
    """A deadline approaches: the holder is reminded, or the next rung is warned."""

    subject: ClassVar[str] = versioned("reminder_due")
    member_id: str
    rung: int
    kind: Literal["holder", "next_rung"]
    fraction: float
    due_at: datetime


class CaseOverdueAtTop(CaseEvent):
    """A case is overdue at the top rung; leadership is told once a day while it stays so."""

    subject: ClassVar[str] = versioned("overdue_at_top")
    rung: int
    unit_id: str
    member_ids: list[str]
    due_at: datetime
    day: str


class CaseRejected(CaseEvent):
    """Leadership rejected the petition (out of scope, abusive…), with a reason."""

    subject: ClassVar[str] = versioned("rejected")
    actor: str
    reason: str


AccountLinkKind = Literal["invite", "reset"]


class AccountLinkRequested(Event):
    """Someone asked for a one-time link to set a member's password (an invitation or a
    reset): notify emails it to the member's work address.

    Not about a petition: `petition_id` is derived from the link's id (`account_petition_id`),
    so the event keys and orders like the others and never joins a petition's timeline. It
    carries no token: notify asks routing for the link when it sends (`AccountLinkRequest`),
    routing mints the token then and keeps only its hash."""

    subject: ClassVar[str] = versioned("account_link_requested")
    link_id: str
    member_id: str
    kind: AccountLinkKind
    expires_at: datetime
    requested_by: str


def account_petition_id(link_id: str) -> uuid.UUID:
    """The stand-in petition id of an account event (no petition has it)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"petitions:account-link:{link_id}")


# Events about staff accounts, not petitions: no timeline, no petition facts.
ACCOUNT_EVENTS: tuple[type[Event], ...] = (AccountLinkRequested,)
