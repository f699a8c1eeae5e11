"""A petition's facts from its events (pure: no database): who held it at each rung and until
when, first response, resolutions on time or late, reopenings, the resident's feedback, and
what those facts add to the per-day counters of each unit and member. `stats` stores them.

Definitions (docs/notifications.md):
- first response: the first accept, question to the resident or resolution after submission;
- resolution time: from submission to a resolution;
- a rung is on time when it was resolved by its deadline, late when resolved after it or
  escalated because it passed; the on-time rate is on-time resolutions over resolutions plus
  deadline escalations (the share of cases resolved within their deadline);
- counters are dated by the local (Asia/Ho_Chi_Minh) day on which the counted thing happened and
  attributed to the member (and their unit) who held the case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseDeclined,
    CaseEscalated,
    CaseQuestionAsked,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    Event,
    FeedbackGiven,
    PetitionSubmitted,
    PetitionWithdrawn,
)

OPEN_STATUSES = ("submitted", "assigned", "accepted", "waiting_for_resident", "escalated")
Counters = dict[str, int]


@dataclass
class Rung:
    """One holder's time with the case at one rung."""

    rung: int
    member_id: str
    member_name: str
    unit_id: str
    case_id: str
    assigned_at: datetime
    due_at: datetime | None
    ended_at: datetime | None = None
    # open | resolved | escalated | reassigned | declined | closed | rejected | withdrawn
    outcome: str = "open"
    # True on time, False late, None not decided by a deadline (reassigned, still open…).
    on_time: bool | None = None
    escalation_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("assigned_at", "due_at", "ended_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass
class Resolution:
    at: datetime
    member_id: str
    unit_id: str
    rung: int
    on_time: bool | None
    reopened_at: datetime | None = None


@dataclass
class Feedback:
    at: datetime
    satisfied: bool
    member_id: str | None
    unit_id: str | None


@dataclass
class Facts:
    petition_id: str
    reference: str | None = None
    title: str | None = None
    origin_unit_id: str | None = None
    submitted_at: datetime | None = None
    status: str = "unknown"
    first_response_at: datetime | None = None
    first_response_by: tuple[str, str] | None = None
    closed_at: datetime | None = None
    rungs: list[Rung] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    escalations: list[tuple[datetime, str]] = field(default_factory=list)
    reopen_count: int = 0

    @property
    def current(self) -> Rung | None:
        return self.rungs[-1] if self.rungs else None

    @property
    def satisfied(self) -> bool | None:
        return self.feedback[-1].satisfied if self.feedback else None

    @property
    def resolved_at(self) -> datetime | None:
        return self.resolutions[-1].at if self.resolutions else None

    def holder_before(self, at: datetime) -> str | None:
        """Who held the case just before `at`."""
        for period in reversed(self.rungs):
            if period.assigned_at < at:
                return period.member_id
        return None

    def resolver_before(self, at: datetime) -> str | None:
        for resolution in reversed(self.resolutions):
            if resolution.at <= at:
                return resolution.member_id
        return None

    def escalation_reason_before(self, at: datetime) -> str | None:
        for when, reason in reversed(self.escalations):
            if when <= at:
                return reason
        return None

    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def _end(period: Rung | None, at: datetime, outcome: str, on_time: bool | None = None) -> None:
    if period is not None and period.outcome == "open":
        period.ended_at = at
        period.outcome = outcome
        period.on_time = on_time


def replay(petition_id: str, events: Iterable[Event]) -> Facts:
    """A petition's facts from its events, taken in the order they happened."""
    facts = Facts(petition_id=petition_id)
    for event in sorted(events, key=lambda e: e.occurred_at):
        _apply(facts, event)
    return facts


def _apply(facts: Facts, event: Event) -> None:
    """What one event changes in the facts."""
    at = event.occurred_at
    match event:
        case PetitionSubmitted():
            facts.reference, facts.title = event.reference, event.title
            facts.origin_unit_id = event.unit_id
            facts.submitted_at = at
            if facts.status == "unknown":
                facts.status = "submitted"
        case CaseAssigned():
            _assigned(facts, event)
        case CaseAccepted():
            _responded(facts, at)
            facts.status = "accepted"
        case CaseQuestionAsked():
            _responded(facts, at)
            facts.status = "waiting_for_resident"
        case CaseResumed():
            if facts.current is not None and event.due_at is not None:
                facts.current.due_at = event.due_at
            facts.status = "accepted"
        case CaseResolved():
            _resolved(facts, at)
        case CaseDeclined():
            _end(facts.current, at, "declined")
        case CaseEscalated():
            _escalated(facts, event)
        case CaseReopened():
            _reopened(facts, at)
        case FeedbackGiven():
            last = facts.resolutions[-1] if facts.resolutions else None
            member_id, unit_id = (last.member_id, last.unit_id) if last else (None, None)
            facts.feedback.append(Feedback(at, event.resolved, member_id, unit_id))
        case CaseClosed() | CaseRejected() | PetitionWithdrawn():
            _ended(facts, event)


def _responded(facts: Facts, at: datetime) -> None:
    """The first accept, question or resolution is the first response, by whoever held it."""
    if facts.first_response_at is None and facts.current is not None:
        facts.first_response_at = at
        facts.first_response_by = (facts.current.member_id, facts.current.unit_id)


def _assigned(facts: Facts, event: CaseAssigned) -> None:
    """A new holder: the previous rung (if still open) ends as reassigned."""
    _end(facts.current, event.occurred_at, "reassigned")
    facts.rungs.append(
        Rung(
            rung=event.rung,
            member_id=event.member_id,
            member_name=event.member_name,
            unit_id=event.unit_id,
            case_id=str(event.case_id),
            assigned_at=event.occurred_at,
            due_at=event.due_at,
        )
    )
    facts.status = "assigned"


def _resolved(facts: Facts, at: datetime) -> None:
    """A resolution is on time when it came by the rung's deadline (or there was none)."""
    _responded(facts, at)
    current = facts.current
    if current is not None and current.outcome == "open":
        on_time = current.due_at is None or at <= current.due_at
        _end(current, at, "resolved", on_time)
        facts.resolutions.append(
            Resolution(at, current.member_id, current.unit_id, current.rung, on_time)
        )
    facts.status = "resolved"


def _escalated(facts: Facts, event: CaseEscalated) -> None:
    """A rung escalated because its deadline passed was late; for any other reason it is
    not judged on time or late."""
    facts.escalations.append((event.occurred_at, event.reason))
    current = facts.current
    if current is not None and current.outcome == "open":
        late = False if event.reason == "deadline_passed" else None
        _end(current, event.occurred_at, "escalated", late)
        current.escalation_reason = event.reason
    facts.status = "escalated"


def _reopened(facts: Facts, at: datetime) -> None:
    """The latest resolution before the reopening did not hold."""
    facts.reopen_count += 1
    for resolution in reversed(facts.resolutions):
        if resolution.at <= at and resolution.reopened_at is None:
            resolution.reopened_at = at
            break
    facts.status = "reopened"


def _ended(facts: Facts, event: CaseClosed | CaseRejected | PetitionWithdrawn) -> None:
    at = event.occurred_at
    match event:
        case CaseClosed():
            _end(facts.current, at, "closed")
            facts.status = "withdrawn" if event.reason == "withdrawn" else "closed"
            facts.closed_at = at
        case CaseRejected():
            _end(facts.current, at, "rejected")
            facts.status = "rejected"
            facts.closed_at = at
        case PetitionWithdrawn():
            _end(facts.current, at, "withdrawn")
            facts.status = "withdrawn"
            facts.closed_at = facts.closed_at or at


class _Rows:
    """Counter rows keyed `scope|id|local day`; each count goes to the member and their unit."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.rows: dict[str, Counters] = {}

    def add(self, member_id: str | None, unit_id: str | None, at: datetime, **counts: int) -> None:
        day = at.astimezone(self.zone).date().isoformat()
        for scope, scope_id in (("member", member_id), ("unit", unit_id)):
            if not scope_id:
                continue
            row = self.rows.setdefault(f"{scope}|{scope_id}|{day}", {})
            for name, value in counts.items():
                if value:
                    row[name] = row.get(name, 0) + value


def contributions(facts: Facts, zone: ZoneInfo) -> dict[str, Counters]:
    """What this petition adds to each (scope, id, local day) counter row."""
    out = _Rows(zone)
    submitted = facts.submitted_at
    if submitted and facts.origin_unit_id:
        out.add(None, facts.origin_unit_id, submitted, received=1)
    for period in facts.rungs:
        out.add(period.member_id, period.unit_id, period.assigned_at, assigned=1)
        if period.outcome == "escalated" and period.ended_at is not None:
            late = int(period.on_time is False)
            out.add(
                period.member_id, period.unit_id, period.ended_at, escalated=1, escalated_late=late
            )
    if facts.first_response_at and facts.first_response_by:
        member_id, unit_id = facts.first_response_by
        seconds = _seconds_since(submitted, facts.first_response_at)
        out.add(
            member_id,
            unit_id,
            facts.first_response_at,
            responded=1,
            response_n=int(submitted is not None),
            response_s=seconds,
        )
    for r in facts.resolutions:
        seconds = _seconds_since(submitted, r.at)
        out.add(
            r.member_id,
            r.unit_id,
            r.at,
            resolved=1,
            resolved_on_time=int(r.on_time is True),
            resolution_n=int(submitted is not None),
            resolution_s=seconds,
        )
        if r.reopened_at is not None:
            out.add(r.member_id, r.unit_id, r.reopened_at, reopened=1)
    for f in facts.feedback:
        out.add(
            f.member_id,
            f.unit_id,
            f.at,
            satisfied=int(f.satisfied),
            unsatisfied=int(not f.satisfied),
        )
    return {k: v for k, v in out.rows.items() if v}


def _seconds_since(start: datetime | None, at: datetime) -> int:
    """Whole seconds from `start` (0 when unknown, never negative: events may arrive late)."""
    return max(int((at - start).total_seconds()), 0) if start else 0


def difference(old: Mapping[str, Counters], new: Mapping[str, Counters]) -> dict[str, Counters]:
    """What to add to the counters to go from `old` to `new` (negative where a count moved)."""
    delta: dict[str, Counters] = {}
    for key in set(old) | set(new):
        before, after = old.get(key, {}), new.get(key, {})
        changes = {
            name: after.get(name, 0) - before.get(name, 0)
            for name in set(before) | set(after)
            if after.get(name, 0) != before.get(name, 0)
        }
        if changes:
            delta[key] = changes
    return delta
