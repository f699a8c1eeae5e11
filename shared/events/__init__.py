"""The event catalogue: every petition event, by its subject."""

from __future__ import annotations

from .base import Event, derived_id, versioned
from .intake import (
    EscalationRequested,
    FeedbackGiven,
    PetitionSubmitted,
    PetitionWithdrawn,
    ResidentAnswered,
)
from .routing import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseDeclined,
    CaseEscalated,
    CaseEvent,
    CaseNoteAdded,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseRejected,
    CaseReminderDue,
    CaseReopened,
    CaseResolved,
    CaseResumed,
)

CATALOGUE: dict[str, type[Event]] = {
    cls.subject: cls
    for cls in (
        PetitionSubmitted,
        FeedbackGiven,
        PetitionWithdrawn,
        ResidentAnswered,
        EscalationRequested,
        CaseAssigned,
        CaseAccepted,
        CaseNoteAdded,
        CaseResolved,
        CaseReopened,
        CaseEscalated,
        CaseClosed,
        CaseDeclined,
        CaseQuestionAsked,
        CaseResumed,
        CaseReminderDue,
        CaseOverdueAtTop,
        CaseRejected,
    )
}


class UnknownEventError(ValueError):
    """A message whose subject is not in the catalogue."""


def parse_event(subject: str, payload: bytes) -> Event:
    """Decode a message into its event class; raises on an unknown subject or a bad body."""
    try:
        cls = CATALOGUE[subject]
    except KeyError:
        raise UnknownEventError(subject) from None
    return cls.model_validate_json(payload)


__all__ = [
    "CATALOGUE",
    "CaseAccepted",
    "CaseAssigned",
    "CaseClosed",
    "CaseDeclined",
    "CaseEscalated",
    "CaseEvent",
    "CaseNoteAdded",
    "CaseOverdueAtTop",
    "CaseQuestionAsked",
    "CaseRejected",
    "CaseReminderDue",
    "CaseReopened",
    "CaseResolved",
    "CaseResumed",
    "EscalationRequested",
    "Event",
    "FeedbackGiven",
    "PetitionSubmitted",
    "PetitionWithdrawn",
    "ResidentAnswered",
    "UnknownEventError",
    "derived_id",
    "parse_event",
    "versioned",
]
