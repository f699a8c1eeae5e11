"""Moves of a case between holders, as the values, history, events and deadlines one
compare-and-set change applies. Shared by the event handlers, the staff API and the sweep, so a
case escalates the same way whatever moved it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing.assignment import Choice
from services.routing.cases import (
    Entry,
    Organisation,
    change,
    envelope,
    placement_values,
    touch_member,
)
from services.routing.escalation import Plan, Planned, max_wait_until
from shared.events import (
    CaseAssigned,
    CaseEscalated,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseResumed,
    derived_id,
)
from shared.events.routing import AssignReason, EscalationReason

CaseRow = RowMapping | dict[str, Any]


@dataclass
class Move:
    """One change of a case: apply with `cases.change(..., cancel=, schedule=)`."""

    values: dict[str, Any]
    entries: list[Entry]
    schedule: tuple[Planned, ...] = ()
    cancel: Literal["all", "ack"] | None = "all"
    # The member who now holds the case (their last-assigned time is updated).
    assignee: str | None = None
    to_rung: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def apply(conn: AsyncConnection, case: CaseRow, move: Move, *, now: datetime) -> None:
    """Apply `move` to `case` as one compare-and-set change (CaseConflict if it moved meanwhile)."""
    await change(
        conn,
        case,  # type: ignore[arg-type]
        values=move.values,
        entries=move.entries,
        now=now,
        cancel=move.cancel,
        schedule=move.schedule,
    )
    if move.assignee is not None:
        await touch_member(conn, move.assignee, now)


def assigned_entry(
    case: CaseRow,
    choice: Choice,
    *,
    plan: Plan,
    reason: AssignReason,
    seq: int,
    now: datetime,
    causation_id: uuid.UUID | None,
    actor: str | None = None,
) -> Entry:
    m = choice.member
    event = CaseAssigned(
        **envelope(
            case, kind="assigned", rung=choice.rung, seq=seq, now=now, causation_id=causation_id
        ),
        rung=choice.rung,
        unit_id=choice.unit_id,
        member_id=m.member_id,
        member_username=m.username,
        member_name=m.name,
        member_email=m.email,
        reason=reason,
        due_at=plan.due_at,
        actor=actor,
        previous_member_id=case.get("holder_member_id"),
    )
    detail: dict[str, Any] = {"reason": reason, "unit_id": choice.unit_id, "username": m.username}
    if choice.outcome == "top":
        detail["flag"] = "top_rung"
    return Entry(
        event, "assigned", actor=actor, member_id=m.member_id, rung=choice.rung, detail=detail
    )


def escalated_entry(
    case: CaseRow,
    *,
    to_rung: int,
    reason: EscalationReason,
    actor: str | None,
    seq: int,
    now: datetime,
    causation_id: uuid.UUID | None,
) -> Entry:
    event = CaseEscalated(
        **envelope(
            case, kind="escalated", rung=to_rung, seq=seq, now=now, causation_id=causation_id
        ),
        from_rung=case["rung"],
        to_rung=to_rung,
        reason=reason,
        actor=actor,
        from_member_id=case.get("holder_member_id"),
    )
    return Entry(
        event,
        "escalated",
        actor=actor,
        member_id=case.get("holder_member_id"),
        rung=to_rung,
        detail={"from_rung": case["rung"], "to_rung": to_rung, "reason": reason},
    )


def move_to(
    case: CaseRow,
    choice: Choice,
    org: Organisation,
    now: datetime,
    *,
    reason: AssignReason,
    escalation: EscalationReason | None = None,
    actor: str | None = None,
    causation_id: uuid.UUID | None = None,
    before: Sequence[Entry] = (),
    acknowledged: bool = False,
) -> Move:
    """The case rests with `choice` from `now`, on fresh deadlines for its rung; when that is
    a higher rung and `escalation` is given, the escalation is recorded with its reason."""
    seq = case["version"] + 1
    plan = org.plan(
        unit_id=case["unit_id"],
        category_id=case["category_id"],
        rung=choice.rung,
        start=now,
        acknowledged=acknowledged,
    )
    entries = list(before)
    if escalation is not None and choice.rung > case["rung"]:
        entries.append(
            escalated_entry(
                case,
                to_rung=choice.rung,
                reason=escalation,
                actor=actor,
                seq=seq,
                now=now,
                causation_id=causation_id,
            )
        )
    entries.append(
        assigned_entry(
            case,
            choice,
            plan=plan,
            reason=reason,
            seq=seq,
            now=now,
            causation_id=causation_id,
            actor=actor,
        )
    )
    return Move(
        values=_placed(choice, plan, escalation=escalation, acknowledged=acknowledged),
        entries=entries,
        schedule=plan.rows,
        assignee=choice.member.member_id,
        to_rung=choice.rung,
    )


def _placed(
    choice: Choice, plan: Plan, *, escalation: EscalationReason | None, acknowledged: bool
) -> dict[str, Any]:
    """The case's columns once placed: marked overdue when it moved because the resident's
    deadline passed (it stays marked for the leaders' eyes); accepted when taken over."""
    values = placement_values(choice, plan)
    if escalation in ("deadline_passed", "resident_request") and values["flag"] is None:
        values["flag"] = "overdue"
    if acknowledged:
        values["status"] = "accepted"
    return values


def escalate(
    case: CaseRow,
    org: Organisation,
    now: datetime,
    *,
    reason: EscalationReason,
    actor: str | None = None,
    causation_id: uuid.UUID | None = None,
    before: Sequence[Entry] = (),
) -> Move | None:
    """One rung up, or further while nobody can take a rung; None when nothing is higher."""
    choice = org.next_holder(
        "escalated",
        rung=case["rung"],
        unit_id=case["unit_id"],
        category_id=case["category_id"],
        now=now,
    )
    if choice is None:
        return None
    return move_to(
        case,
        choice,
        org,
        now,
        reason="escalated",
        escalation=reason,
        actor=actor,
        causation_id=causation_id,
        before=before,
    )


def unheld(entries: Sequence[Entry]) -> Move:
    """Nobody can take the case: it waits, flagged, for a leader to assign it; no deadline runs
    while nobody holds it."""
    return Move(
        values={
            "status": "unassigned",
            "holder_member_id": None,
            "flag": "unassigned",
            "due_at": None,
            "ack_due_at": None,
        },
        entries=list(entries),
    )


def overdue_notice(
    case: CaseRow, org: Organisation, now: datetime, *, seq: int
) -> tuple[Entry, Planned]:
    """The day's notice that a case is overdue at the top rung, and when the next one is due."""
    calendar = org.calendar(case["unit_id"])
    unit = case.get("holder_unit_id") or case["unit_id"]
    day = calendar.local_date(now).isoformat()
    leaders = [c.member_id for c in org.leaders_of(unit)]
    if case.get("holder_member_id") and case["holder_member_id"] not in leaders:
        leaders.append(case["holder_member_id"])
    event = CaseOverdueAtTop(
        **{
            **envelope(
                case, kind="overdue_at_top", rung=case["rung"], seq=seq, now=now, causation_id=None
            ),
            "event_id": derived_id(case["id"], "overdue_at_top", case["rung"], day),
        },
        rung=case["rung"],
        unit_id=unit,
        member_ids=leaders,
        due_at=case["due_at"] or now,
        day=day,
    )
    entry = Entry(event, "overdue_at_top", rung=case["rung"], detail={"day": day})
    return entry, Planned("top_daily", calendar.next_opening_after_day_of(now))


def at_top(case: CaseRow, org: Organisation, now: datetime) -> Move:
    """Nowhere higher: the case stays with its holder, flagged overdue; leadership is told today
    and every working day after while it stays so."""
    entry, following = overdue_notice(case, org, now, seq=case["version"] + 1)
    return Move(values={"flag": "overdue_top"}, entries=[entry], schedule=(following,))


def pause(
    case: CaseRow,
    org: Organisation,
    now: datetime,
    *,
    member_id: str,
    question: str,
    actor: str | None,
) -> Move:
    """The holder asks the resident: the clock stops with the working time left to resolve kept
    on the case, and restarts at the latest after the policy's longest wait."""
    calendar = org.calendar(case["unit_id"])
    if case["due_at"] is not None:
        left = calendar.working_between(now, case["due_at"])
    else:
        left = org.rung_spec(case["unit_id"], case["category_id"], case["rung"]).resolve.span(
            calendar
        )
    question_id = derived_id(case["id"], "question", case["version"] + 1)
    until = max_wait_until(calendar, org.ladder.policy, now)
    event = CaseQuestionAsked(
        **envelope(
            case,
            kind="question_asked",
            rung=case["rung"],
            seq=case["version"] + 1,
            now=now,
            causation_id=None,
        ),
        member_id=member_id,
        question_id=question_id,
        question=question,
        max_wait_until=until,
    )
    return Move(
        values={
            "status": "waiting_for_resident",
            "due_at": None,
            "ack_due_at": None,
            "question_id": str(question_id),
            "paused_remaining_s": left.total_seconds(),
        },
        entries=[
            Entry(
                event,
                "question_asked",
                actor=actor,
                member_id=member_id,
                rung=case["rung"],
                detail={"question": question, "question_id": str(question_id)},
            )
        ],
        schedule=(Planned("max_wait", until),),
    )


def resume(
    case: CaseRow,
    org: Organisation,
    now: datetime,
    *,
    reason: Literal["answered", "max_wait"],
    causation_id: uuid.UUID | None = None,
    before: Sequence[Entry] = (),
) -> Move:
    """The clock runs again with the working time that was left when it stopped."""
    left = timedelta(seconds=case.get("paused_remaining_s") or 0.0)
    plan = org.plan(
        unit_id=case["unit_id"],
        category_id=case["category_id"],
        rung=case["rung"],
        start=now,
        remaining=left,
        acknowledged=True,
    )
    event = CaseResumed(
        **envelope(
            case,
            kind="resumed",
            rung=case["rung"],
            seq=case["version"] + 1,
            now=now,
            causation_id=causation_id,
        ),
        reason=reason,
        due_at=plan.due_at,
    )
    return Move(
        values={
            "status": "accepted",
            "due_at": plan.due_at,
            "ack_due_at": None,
            "question_id": None,
            "paused_remaining_s": None,
        },
        entries=[
            *before,
            Entry(event, "resumed", rung=case["rung"], detail={"reason": reason}),
        ],
        schedule=plan.rows,
    )
