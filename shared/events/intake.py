"""Events intake publishes. Residents' contact data never travels in them."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from .base import Event, versioned


class PetitionSubmitted(Event):
    """A resident submitted a petition; intake stored it and gave a reference."""

    subject: ClassVar[str] = versioned("submitted")
    reference: str
    unit_id: str
    category_id: str
    title: str
    description: str
    location: str | None = None
    # The optional point the resident gave, WGS 84 degrees (both or neither); new in v1, absent
    # from older events.
    latitude: float | None = None
    longitude: float | None = None
    language: str = "vi"
    # Whether the resident left a way to reach them and agreed to be told of progress.
    wants_updates: bool = False


class FeedbackGiven(Event):
    """The resident said whether the resolution settled the matter."""

    subject: ClassVar[str] = versioned("feedback_given")
    resolved: bool
    comment: str | None = None


class PetitionWithdrawn(Event):
    """The resident withdrew the petition."""

    subject: ClassVar[str] = versioned("withdrawn")
    reason: str | None = None


class ResidentAnswered(Event):
    """The resident answered a question the case holder asked."""

    subject: ClassVar[str] = versioned("resident_answered")
    question_id: uuid.UUID | None = None
    answer: str


class EscalationRequested(Event):
    """The resident asked, from the tracking page, that an overdue case go one rung up."""

    subject: ClassVar[str] = versioned("escalation_requested")
    comment: str | None = None


class PetitionRedacted(Event):
    """The resident had their contact data erased: every service removes, from its own copy,
    the free text the resident wrote about this petition (title, description, place, comments,
    answers, reasons). Intake alone held the contact data; it carries none here either."""

    subject: ClassVar[str] = versioned("redacted")


class TrackingLinkRequested(Event):
    """A resident who lost their tracking link gave the petition's reference and the email or
    phone they left, and it matched: a new link goes to that contact (`channel`) only. Neither
    the contact nor a link travels here; notify asks intake for both when it sends."""

    subject: ClassVar[str] = versioned("tracking_link_requested")
    channel: Literal["email", "phone"]


# What replaces a resident's text once the petition is redacted.
REDACTED_TEXT = "[đã xoá theo yêu cầu của người dân / removed at the resident's request]"
