"""Who must be told what after an event (the table in docs/notifications.md), how a notification
is identified, when a failed delivery is tried again, and when a message may leave (quiet hours,
batching). Plain functions: no database, no network.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.events import (
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseRejected,
    CaseReminderDue,
    CaseReopened,
    CaseResolved,
    Event,
    PetitionSubmitted,
    TrackingLinkRequested,
)

from .config import QuietHours
from .facts import Facts
from .timeline import ESCALATION_REASONS

RecipientKind = Literal["resident", "member"]
RESIDENT_REF = "resident"

# Templates for the resident; the rest go to staff.
RESIDENT_TEMPLATES = frozenset(
    {
        "petition_received",
        "question_asked",
        "case_resolved",
        "case_escalated",
        "case_closed",
        "tracking_link_recovered",
    }
)
# Sent because the resident asked for it just now, to the one contact they gave: not a progress
# message, so it goes whether or not they asked for those.
LINK_RECOVERY = "tracking_link_recovered"


@dataclass(frozen=True)
class PlannedNotification:
    """A message to send. A resident's address is deliberately absent: it is asked for at send time."""

    recipient_kind: RecipientKind
    recipient_ref: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    # A member's work address when the event carried it ("" when it said there is none);
    # None means "ask routing at send time".
    recipient_address: str | None = None
    recipient_name: str | None = None


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


def _resident(template: str, **context: Any) -> PlannedNotification:
    return PlannedNotification(
        recipient_kind="resident", recipient_ref=RESIDENT_REF, template=template, context=context
    )


def _member(
    member_id: str,
    template: str,
    *,
    email: str | None = None,
    name: str | None = None,
    **context: Any,
) -> PlannedNotification:
    return PlannedNotification(
        recipient_kind="member",
        recipient_ref=member_id,
        template=template,
        context=context,
        recipient_address=email,
        recipient_name=name,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def plan_notifications(event: Event, facts: Facts | None = None) -> list[PlannedNotification]:
    """Who is told what; `facts` is the petition's history so far (who resolved it, who held it).

    Resident: received, a new tracking link they asked for, a question from the holder, resolved (with the link to confirm),
    escalated, closed (also when rejected; not when they withdrew it themselves).
    Member: assigned, deadline reminder, taken away by escalation or reassignment, reopened.
    Leader: escalated to them, a heads-up before a case below comes up, overdue at the top
    (daily). The unit's members get the meeting digest (`scheduled.py`).
    """
    case = {"case_id": str(getattr(event, "case_id", "") or "")}
    match event:
        case PetitionSubmitted():
            return [_resident("petition_received")]
        case TrackingLinkRequested():
            return [_resident(LINK_RECOVERY, channel=event.channel)]
        case CaseQuestionAsked():
            return [
                _resident(
                    "question_asked",
                    question=event.question,
                    max_wait_until=_iso(event.max_wait_until),
                )
            ]
        case CaseResolved():
            return [_resident("case_resolved", explanation=event.explanation)]
        case CaseRejected():
            return [_resident("case_closed", reason="rejected", reason_text=event.reason)]
        case CaseClosed(reason="withdrawn"):
            return []
        case CaseClosed():
            return [_resident("case_closed", reason=event.reason, reason_text="")]
        case CaseEscalated():
            return _plan_escalated(event, case, facts)
        case CaseAssigned():
            return _plan_assigned(event, case, facts)
        case CaseReminderDue():
            template = "deadline_reminder" if event.kind == "holder" else "deadline_warning"
            return [
                _member(
                    event.member_id,
                    template,
                    rung=event.rung,
                    due_at=event.due_at.isoformat(),
                    **case,
                )
            ]
        case CaseReopened():
            resolver = facts.resolver_before(event.occurred_at) if facts else None
            if resolver is None:
                return []
            return [_member(resolver, "case_reopened", comment=event.comment or "", **case)]
        case CaseOverdueAtTop():
            return _plan_overdue_at_top(event, case)
    return []


def waits_for(event: Event, facts: Facts) -> str | None:
    """What earlier event `event` needs before its messages can be planned, if it has not
    arrived (the two crossed on the way: the earlier one is being retried). Only pairs the
    lifecycle guarantees: a reopening always follows a resolution, an assignment by
    escalation always follows its escalation. Everything else is planned as it comes; the
    facts are replayed in time order on every event, whatever the arrival order."""
    match event:
        case CaseReopened() if facts.resolver_before(event.occurred_at) is None:
            return "the resolution it reopens"
        case CaseAssigned(reason="escalated") if (
            facts.escalation_reason_before(event.occurred_at) is None
        ):
            return "the escalation it follows"
    return None


def _plan_escalated(
    event: CaseEscalated, case: dict[str, str], facts: Facts | None
) -> list[PlannedNotification]:
    """The resident hears where their petition went; the member it was taken from, that it
    left them."""
    vi, en = ESCALATION_REASONS.get(event.reason, (event.reason, event.reason))
    planned = [
        _resident("case_escalated", to_rung=event.to_rung, reason_vi=vi, reason_en=en, **case)
    ]
    previous = event.from_member_id or (facts.holder_before(event.occurred_at) if facts else None)
    if previous:
        planned.append(
            _member(
                previous,
                "case_taken_away",
                reason="escalated",
                to_rung=event.to_rung,
                reason_vi=vi,
                reason_en=en,
                **case,
            )
        )
    return planned


def _plan_overdue_at_top(
    event: CaseOverdueAtTop, case: dict[str, str]
) -> list[PlannedNotification]:
    """Every leader at the top rung, once each, however often routing lists them."""
    return [
        _member(
            member_id,
            "overdue_at_top",
            rung=event.rung,
            due_at=event.due_at.isoformat(),
            day=event.day,
            **case,
        )
        for member_id in dict.fromkeys(event.member_ids)
    ]


def _plan_assigned(
    event: CaseAssigned, case: dict[str, str], facts: Facts | None
) -> list[PlannedNotification]:
    due = _iso(event.due_at)
    if event.reason == "escalated":
        why = facts.escalation_reason_before(event.occurred_at) if facts else None
        vi, en = ESCALATION_REASONS.get(why or "", ("", ""))
        planned = [
            _member(
                event.member_id,
                "case_escalated_to_you",
                email=event.member_email or "",
                name=event.member_name,
                rung=event.rung,
                due_at=due,
                reason_vi=vi,
                reason_en=en,
                **case,
            )
        ]
    else:
        planned = [
            _member(
                event.member_id,
                "case_assigned",
                email=event.member_email or "",
                name=event.member_name,
                rung=event.rung,
                reason=event.reason,
                due_at=due,
                **case,
            )
        ]
    if (
        event.reason == "reassigned"
        and event.previous_member_id
        and event.previous_member_id != event.member_id
    ):
        planned.append(
            _member(
                event.previous_member_id,
                "case_taken_away",
                reason="reassigned",
                to_rung=event.rung,
                reason_vi="",
                reason_en="",
                **case,
            )
        )
    return planned


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


def _in_window(moment: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end


def quiet_until(now: datetime, quiet: QuietHours, channel: str, zone: ZoneInfo) -> datetime | None:
    """When a message on `channel` may leave if `now` falls in the recipient's quiet hours
    (the end of them, local time), else None: it may leave now."""
    if channel not in quiet.channels or quiet.start == quiet.end:
        return None
    local = now.astimezone(zone)
    if not _in_window(local.time().replace(tzinfo=None), quiet.start, quiet.end):
        return None
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    # Rebuild from the wall-clock time so a DST change (elsewhere) lands on the intended hour.
    wall = datetime(end.year, end.month, end.day, end.hour, end.minute, tzinfo=zone)
    return wall.astimezone(now.tzinfo)


def batch_key(*, recipient_kind: str, recipient_ref: str, channel: str, template: str) -> str:
    return f"batch:{recipient_kind}:{recipient_ref}:{channel}:{template}"


def batched_template(template: str, count: int) -> str:
    """A batch of one reads as the single message; more become the list version."""
    return f"{template}_batch" if count > 1 else template
