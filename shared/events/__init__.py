"""The event catalogue: every petition event, by its subject."""

from __future__ import annotations

from .base import Event, derived_id, versioned
from .intake import (
    REDACTED_TEXT,
    EscalationRequested,
    FeedbackGiven,
    PetitionRedacted,
    PetitionSubmitted,
    PetitionWithdrawn,
    ResidentAnswered,
    TrackingLinkRequested,
)
from .routing import (
    ACCOUNT_EVENTS,
    AccountLinkRequested,
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
    account_petition_id,
)

CATALOGUE: dict[str, type[Event]] = {
    cls.subject: cls
    for cls in (
        PetitionSubmitted,
        FeedbackGiven,
        PetitionWithdrawn,
        ResidentAnswered,
        EscalationRequested,
        PetitionRedacted,
        TrackingLinkRequested,
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
        AccountLinkRequested,
    )
}


# The fields of each event that hold what a resident wrote (or a copy of it): what a
# `PetitionRedacted` removes from every service's copy.
RESIDENT_TEXT: dict[type[Event], tuple[str, ...]] = {
    PetitionSubmitted: ("title", "description", "location"),
    FeedbackGiven: ("comment",),
    PetitionWithdrawn: ("reason",),
    ResidentAnswered: ("answer",),
    EscalationRequested: ("comment",),
    CaseReopened: ("comment",),
}


# The other fields that place the resident (a point may be their home): a redaction clears them.
RESIDENT_PLACE: dict[type[Event], tuple[str, ...]] = {
    PetitionSubmitted: ("latitude", "longitude"),
}


def redacted(event: Event) -> Event:
    """`event` with the resident's text replaced (an absent text stays absent) and the point
    they gave cleared."""
    fields = RESIDENT_TEXT.get(type(event), ())
    changes: dict[str, object] = {
        f: REDACTED_TEXT for f in fields if getattr(event, f) not in (None, REDACTED_TEXT)
    }
    changes |= {
        f: None for f in RESIDENT_PLACE.get(type(event), ()) if getattr(event, f) is not None
    }
    return event.model_copy(update=changes) if changes else event


def resident_texts(event: Event) -> set[str]:
    """What the resident wrote in `event`, as it is there."""
    values = (getattr(event, f) for f in RESIDENT_TEXT.get(type(event), ()))
    return {v for v in values if isinstance(v, str) and v and v != REDACTED_TEXT}


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
    "ACCOUNT_EVENTS",
    "CATALOGUE",
    "REDACTED_TEXT",
    "RESIDENT_TEXT",
    "AccountLinkRequested",
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
    "PetitionRedacted",
    "PetitionSubmitted",
    "PetitionWithdrawn",
    "ResidentAnswered",
    "TrackingLinkRequested",
    "UnknownEventError",
    "account_petition_id",
    "derived_id",
    "parse_event",
    "redacted",
    "resident_texts",
    "versioned",
]
