"""What routing does when intake's events arrive. Each handler runs inside the consumer's inbox
transaction (shared.messaging.Consumers): its changes, history and outbox rows commit together
with the "handled" mark, so a redelivery changes nothing."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing import models
from services.routing.assignment import Choice
from services.routing.cases import (
    Entry,
    Organisation,
    add_deadlines,
    case_id_for,
    change,
    envelope,
    get_case_by_petition,
    load_organisation,
    placement_values,
    record,
    record_history,
    touch_member,
)
from services.routing.escalation import Plan, Planned
from services.routing.ladder import Ladder
from services.routing.lifecycle import CLOCK_RUNS, FINAL, HELD, transition
from services.routing.transitions import (
    Move,
    apply,
    assigned_entry,
    escalate,
    escalated_entry,
    move_to,
    resume,
    unheld,
)
from shared.clock import Clock
from shared.events import (
    CaseClosed,
    CaseReopened,
    EscalationRequested,
    Event,
    FeedbackGiven,
    PetitionRedacted,
    PetitionSubmitted,
    PetitionWithdrawn,
    ResidentAnswered,
)
from shared.events.intake import REDACTED_TEXT
from shared.events.routing import AssignReason
from shared.messaging import Handler, NotYet

E = TypeVar("E", bound=Event)

log = structlog.get_logger(__name__)


class CaseHandlers:
    """Handlers bound to the service's clock."""

    def __init__(self, *, clock: Clock, ladder: Ladder) -> None:
        self._clock = clock
        self._ladder = ladder

    async def when_petition_submitted_open_case_and_assign(
        self, conn: AsyncConnection, event: PetitionSubmitted
    ) -> None:
        """A new petition opens one case, held by whoever holds a new case (`assignment.
        next_search`: a serving member of the resident's unit who handles the category, or the
        nearest leader when nobody can); unassigned, flagged, when the ladder is empty."""
        if await get_case_by_petition(conn, str(event.petition_id)) is not None:
            return
        now = self._clock.now()
        org = await load_organisation(conn, self._ladder)
        choice = org.next_holder(
            "submitted", rung=0, unit_id=event.unit_id, category_id=event.category_id, now=now
        )
        case = _new_case(event, now)
        entries: list[Entry] = []
        schedule: tuple[Planned, ...] = ()
        if choice is not None:
            plan = org.plan(
                unit_id=event.unit_id, category_id=event.category_id, rung=choice.rung, start=now
            )
            schedule = plan.rows
            entries = _first_placement(case, choice, plan, event, now)
            case.update(placement_values(choice, plan))
        else:
            log.warning(
                "case_unassigned", petition_id=str(event.petition_id), unit_id=event.unit_id
            )
        await conn.execute(insert(models.cases).values(**case))
        await conn.execute(
            insert(models.case_history).values(
                case_id=case["id"],
                event_id=str(event.event_id),
                kind="submitted",
                at=now,
                detail={"reference": event.reference, "unit_id": event.unit_id},
            )
        )
        await add_deadlines(conn, str(case["id"]), int(str(case["rung"])), schedule)
        await record(conn, str(case["id"]), entries, now=now)
        if choice is not None:
            await touch_member(conn, choice.member.member_id, now)

    async def when_feedback_given_close_or_reopen(
        self, conn: AsyncConnection, event: FeedbackGiven
    ) -> None:
        """The resident's word on a resolved case: "resolved" closes it; "not resolved" reopens
        it one rung higher (at the top rung it stays with the top leaders, flagged). Feedback on
        a case that is not resolved changes nothing."""
        case = await case_of(conn, event)
        if case["status"] != "resolved":
            log.info(
                "feedback_ignored",
                petition_id=str(event.petition_id),
                status=case["status"],
            )
            return
        now = self._clock.now()
        if event.resolved:
            await _close_confirmed(conn, case, event, now)
            return
        transition(transition(case["status"], "reopen"), "assign")
        org = await load_organisation(conn, self._ladder)
        await apply(conn, case, _reopen(case, org, event, now), now=now)

    async def when_petition_withdrawn_close_case(
        self, conn: AsyncConnection, event: PetitionWithdrawn
    ) -> None:
        """The resident withdrew: an unfinished case ends, and whoever held it is told."""
        case = await case_of(conn, event)
        if case["status"] in FINAL:
            return
        now = self._clock.now()
        transition(case["status"], "withdraw")
        closed = CaseClosed(
            **envelope(
                case,
                kind="closed",
                rung=case["rung"],
                seq=case["version"] + 1,
                now=now,
                causation_id=event.event_id,
            ),
            reason="withdrawn",
        )
        await change(
            conn,
            case,
            values={"status": "withdrawn", "closed_at": now, "due_at": None, "flag": None},
            entries=[Entry(closed, "withdrawn", actor="resident", detail={"reason": event.reason})],
            now=now,
            cancel="all",
        )

    async def when_resident_answered_resume_case(
        self, conn: AsyncConnection, event: ResidentAnswered
    ) -> None:
        """The resident's answer is kept in the case's history for the holder; when it answers
        the open question, the clock runs again with the time that was left."""
        case = await case_of(conn, event)
        now = self._clock.now()
        answer = Entry(
            event,
            "resident_answered",
            actor="resident",
            rung=case["rung"],
            detail={
                "answer": event.answer,
                "question_id": str(event.question_id) if event.question_id else None,
            },
        )
        current = event.question_id is None or str(event.question_id) == case["question_id"]
        if case["status"] != "waiting_for_resident" or not current:
            # A late or second answer: kept for the holder, the clock is not touched.
            await record_history(conn, case["id"], [answer], now=now)
            return
        transition(case["status"], "resume")
        org = await load_organisation(conn, self._ladder)
        move = resume(case, org, now, reason="answered", causation_id=event.event_id)
        await record_history(conn, case["id"], [answer], now=now)
        await apply(conn, case, move, now=now)

    async def when_escalation_requested_escalate_overdue_case(
        self, conn: AsyncConnection, event: EscalationRequested
    ) -> None:
        """A resident may move an overdue case one rung up, once per case in the policy's
        interval; a case that is not overdue, waits for the resident, or has nowhere higher to
        go stays where it is (the refusal is kept in the history)."""
        case = await case_of(conn, event)
        now = self._clock.now()
        policy = self._ladder.policy
        overdue = case["flag"] in ("overdue", "overdue_top") or (
            case["due_at"] is not None and case["due_at"] <= now
        )
        last = case["resident_request_at"]
        refusal: str | None = None
        # Held, and its clock running: not while nobody holds it or the resident is asked.
        if case["status"] not in HELD & CLOCK_RUNS:
            refusal = "not_open"
        elif not overdue:
            refusal = "not_overdue"
        elif last is not None and now - last < policy.resident_request_every:
            refusal = "rate_limited"
        move = None
        if refusal is None:
            org = await load_organisation(conn, self._ladder)
            move = escalate(
                case,
                org,
                now,
                reason="resident_request",
                actor="resident",
                causation_id=event.event_id,
            )
            refusal = None if move is not None else "at_top"
        request = Entry(
            event,
            "escalation_requested",
            actor="resident",
            rung=case["rung"],
            detail={"comment": event.comment, "outcome": refusal or "escalated"},
        )
        await record_history(conn, case["id"], [request], now=now)
        if move is None:
            log.info("escalation_request_refused", petition_id=str(event.petition_id), why=refusal)
            return
        move.values["resident_request_at"] = now
        await apply(conn, case, move, now=now)


async def case_of(conn: AsyncConnection, event: Event) -> RowMapping:
    """The case a resident's later event is about. Before its petition's submission has been
    applied there is none yet (the events crossed on the way): `NotYet` keeps the event, and
    it is applied after the submission instead of being dropped."""
    case = await get_case_by_petition(conn, str(event.petition_id))
    if case is None:
        raise NotYet(f"no case yet for petition {event.petition_id}")
    return case


def _new_case(event: PetitionSubmitted, now: datetime) -> dict[str, Any]:
    """The case row a petition opens, before anyone holds it."""
    return {
        "id": str(case_id_for(event.petition_id)),
        "petition_id": str(event.petition_id),
        "correlation_id": str(event.correlation_id),
        "reference": event.reference,
        "unit_id": event.unit_id,
        "category_id": event.category_id,
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "latitude": event.latitude,
        "longitude": event.longitude,
        "language": event.language,
        "status": "unassigned",
        "rung": 0,
        "holder_member_id": None,
        "holder_unit_id": None,
        "flag": "unassigned",
        "due_at": None,
        "opened_at": now,
        "updated_at": now,
        "closed_at": None,
        "version": 1,
    }


def _first_placement(
    case: dict[str, Any], choice: Choice, plan: Plan, event: PetitionSubmitted, now: datetime
) -> list[Entry]:
    """The events of a new case's first holder: an escalation first when nobody at the first
    rung could take it (recorded as one), then the assignment."""
    reason: AssignReason = "initial" if choice.outcome == "initial" else "no_member"
    entries: list[Entry] = []
    if choice.rung > 0:
        entries.append(
            escalated_entry(
                case,
                to_rung=choice.rung,
                reason="nobody_available",
                actor=None,
                seq=1,
                now=now,
                causation_id=event.event_id,
            )
        )
    entries.append(
        assigned_entry(
            case, choice, plan=plan, reason=reason, seq=1, now=now, causation_id=event.event_id
        )
    )
    return entries


async def _close_confirmed(
    conn: AsyncConnection, case: RowMapping, event: FeedbackGiven, now: datetime
) -> None:
    """The resident confirmed the resolution: the case closes."""
    transition(case["status"], "close")
    closed = CaseClosed(
        **envelope(
            case,
            kind="closed",
            rung=case["rung"],
            seq=case["version"] + 1,
            now=now,
            causation_id=event.event_id,
        ),
        reason="resident_confirmed",
    )
    entry = Entry(closed, "closed", actor="resident", detail={"reason": "resident_confirmed"})
    await change(
        conn,
        case,
        values={"status": "closed", "closed_at": now, "due_at": None, "flag": None},
        entries=[entry],
        now=now,
        cancel="all",
    )


def _reopen(case: RowMapping, org: Organisation, event: FeedbackGiven, now: datetime) -> Move:
    """ "Not resolved": the case reopens and goes to whoever holds it next (one rung up; at the
    top, back to the top leaders, flagged; nobody at all: unassigned)."""
    rung = case["rung"]
    reopened = CaseReopened(
        **envelope(
            case,
            kind="reopened",
            rung=rung,
            seq=case["version"] + 1,
            now=now,
            causation_id=event.event_id,
        ),
        from_rung=rung,
        comment=event.comment,
    )
    entries = [
        Entry(reopened, "reopened", actor="resident", rung=rung, detail={"comment": event.comment})
    ]
    choice = org.next_holder(
        "reopened", rung=rung, unit_id=case["unit_id"], category_id=case["category_id"], now=now
    )
    if choice is None:
        return unheld(entries)
    move = move_to(
        case,
        choice,
        org,
        now,
        reason="reopened",
        escalation="not_resolved",
        actor="resident",
        causation_id=event.event_id,
        before=entries,
    )
    if choice.rung <= rung:
        move.values["flag"] = "top_rung"
    return move


# What the resident wrote, by history kind: removed when their petition is redacted.
_RESIDENT_SAID = {
    "withdrawn": "reason",
    "resident_answered": "answer",
    "escalation_requested": "comment",
    "reopened": "comment",
}


async def when_petition_redacted_remove_resident_text(
    conn: AsyncConnection, event: PetitionRedacted
) -> None:
    """The resident was erased in intake: the case keeps its course, but its title,
    description, place and everything the resident wrote in its history are replaced, in the
    case and in routing's outbox. A marker line in the history makes later resident events
    about it redacted as they arrive (`redacting_if_erased`)."""
    case = await case_of(conn, event)
    await redact_case(conn, case)
    seen = select(models.case_history.c.id).where(
        models.case_history.c.event_id == str(event.event_id)
    )
    if await conn.scalar(seen) is None:
        await record_history(
            conn, case["id"], [Entry(event, "redacted", actor="resident")], now=event.occurred_at
        )
    log.info("case_redacted", petition_id=str(event.petition_id), case_id=case["id"])


async def redact_case(conn: AsyncConnection, case: RowMapping) -> None:
    texts = {case["title"], case["description"], case["location"]} - {None, REDACTED_TEXT}
    await conn.execute(
        update(models.cases)
        .where(models.cases.c.id == case["id"])
        .values(
            title=REDACTED_TEXT,
            description=REDACTED_TEXT,
            location=None,
            latitude=None,
            longitude=None,
        )
    )
    h = models.case_history
    rows = await conn.execute(
        select(h.c.id, h.c.kind, h.c.detail).where(
            and_(h.c.case_id == case["id"], h.c.kind.in_(_RESIDENT_SAID))
        )
    )
    for row_id, kind, detail in rows.all():
        key = _RESIDENT_SAID[kind]
        if (detail or {}).get(key) not in (None, REDACTED_TEXT):
            texts.add(detail[key])
            await conn.execute(
                update(h).where(h.c.id == row_id).values(detail={**detail, key: REDACTED_TEXT})
            )
    await redact_outbox(conn, models.messaging.outbox, case["petition_id"], texts)


async def redact_outbox(
    conn: AsyncConnection, outbox: Any, petition_id: str, texts: set[str]
) -> None:
    """The petition's events still in the outbox, with the resident's texts replaced."""
    if not texts:
        return
    rows = await conn.execute(
        select(outbox.c.id, outbox.c.payload).where(outbox.c.payload.contains(petition_id))
    )
    for row_id, payload in rows.all():
        data = json.loads(payload)
        # Only text fields: an event may carry lists (an overdue case's member ids).
        cleaned = {
            k: REDACTED_TEXT if isinstance(v, str) and v in texts else v for k, v in data.items()
        }
        if cleaned != data:
            await conn.execute(
                update(outbox).where(outbox.c.id == row_id).values(payload=json.dumps(cleaned))
            )


def redacting_if_erased(handler: Handler[E]) -> Handler[E]:
    """`handler`, then, if the petition was redacted already, the resident's new text too:
    an erased resident who still writes from the tracking page is not kept in routing."""

    @functools.wraps(handler)
    async def handle(conn: AsyncConnection, event: E) -> None:
        await handler(conn, event)
        case = await get_case_by_petition(conn, str(event.petition_id))
        h = models.case_history
        if case is not None and await conn.scalar(
            select(h.c.id).where(and_(h.c.case_id == case["id"], h.c.kind == "redacted")).limit(1)
        ):
            await redact_case(conn, case)

    return handle
