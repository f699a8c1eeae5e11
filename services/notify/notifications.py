"""Who must be told what after an event, how a notification is identified, and when a failed
delivery is tried again. Plain functions: no database, no network."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.events import CaseAssigned, CaseResolved, Event

RecipientKind = Literal["resident", "member"]
RESIDENT_REF = "resident"
EMAIL = "email"


@dataclass(frozen=True)
class PlannedNotification:
    """A message to send. A resident's address is deliberately absent: it is asked for at send time."""

    recipient_kind: RecipientKind
    recipient_ref: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    recipient_address: str | None = None
    channel: str = EMAIL


def idempotency_key(
    *,
    petition_id: str,
    transition: str,
    recipient_kind: str,
    recipient_ref: str,
    channel: str,
) -> str:
    """One notification per petition, transition, recipient and channel, however often the
    triggering event is delivered."""
    return f"{petition_id}:{transition}:{recipient_kind}:{recipient_ref}:{channel}"


def message_id(key: str, *, domain: str = "petitions.local") -> str:
    """A stable Message-ID, so a mail that is sent twice (crash between send and commit) can be
    recognised as one by the receiving side."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def plan_notifications(event: Event) -> list[PlannedNotification]:
    """The member hears of every case given to them; the resident hears that their petition is
    resolved and how to confirm it (only if they asked for updates, checked at send time)."""
    match event:
        case CaseAssigned():
            return [
                PlannedNotification(
                    recipient_kind="member",
                    recipient_ref=event.member_id,
                    recipient_address=event.member_email,
                    template="case_assigned",
                    context={
                        "case_id": str(event.case_id),
                        "member_name": event.member_name,
                        "rung": event.rung,
                        "reason": event.reason,
                        "due_at": event.due_at.isoformat() if event.due_at else None,
                    },
                )
            ]
        case CaseResolved():
            return [
                PlannedNotification(
                    recipient_kind="resident",
                    recipient_ref=RESIDENT_REF,
                    template="case_resolved",
                    context={"case_id": str(event.case_id), "explanation": event.explanation},
                )
            ]
    return []


def retry_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before the next try after `attempt` failed: doubling from `base_s`, capped at
    `max_s`, then jittered into [½, 1] of that so many failures do not retry in lockstep."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(max_s, base_s * float(2 ** min(attempt - 1, 30)))
    return ceiling * (0.5 + rand() / 2)
