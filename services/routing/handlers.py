"""What routing does when intake's events arrive. Each handler runs inside the consumer's inbox
transaction (shared.messaging.Consumers): its changes, history and outbox rows commit together
with the "handled" mark, so a redelivery changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing import models
from services.routing.assignment import Choice, place
from services.routing.cases import (
    Entry,
    Organisation,
    case_id_for,
    change,
    envelope,
    get_case_by_petition,
    load_organisation,
    placement_values,
    record,
    touch_member,
)
from services.routing.lifecycle import FINAL, transition
from shared.clock import Clock
from shared.events import (
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseReopened,
    FeedbackGiven,
    PetitionSubmitted,
    PetitionWithdrawn,
)
from shared.events.routing import AssignReason

log = structlog.get_logger(__name__)


def assigned_entry(
    case: RowMapping | dict[str, object],
    choice: Choice,
    *,
    org: Organisation,
    category_id: str,
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
        due_at=org.due_at(category_id, choice.rung, now),
        actor=actor,
    )
    detail = {"reason": reason, "unit_id": choice.unit_id, "username": m.username}
    if choice.outcome == "top":
        detail["flag"] = "top_rung"
    return Entry(
        event, "assigned", actor=actor, member_id=m.member_id, rung=choice.rung, detail=detail
    )


class CaseHandlers:
    """Handlers bound to the service's clock."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock

    async def when_petition_submitted_open_case_and_assign(
        self, conn: AsyncConnection, event: PetitionSubmitted
    ) -> None:
        """A new petition opens one case, held by the member who serves the resident's unit and
        handles the category (or the nearest leader when nobody can)."""
        if await get_case_by_petition(conn, str(event.petition_id)) is not None:
            return
        now = self._clock.now()
        org = await load_organisation(conn)
        choice = place(
            0,
            units=org.ladder(event.unit_id),
            candidates=org.candidates,
            category_id=event.category_id,
            now=now,
        )
        case: dict[str, object] = {
            "id": str(case_id_for(event.petition_id)),
            "petition_id": str(event.petition_id),
            "correlation_id": str(event.correlation_id),
            "reference": event.reference,
            "unit_id": event.unit_id,
            "category_id": event.category_id,
            "title": event.title,
            "description": event.description,
            "location": event.location,
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
        entries: list[Entry] = []
        if choice is not None:
            case.update(placement_values(choice, org, event.category_id, now))
            reason: AssignReason = "initial" if choice.outcome == "initial" else "no_member"
            entries.append(
                assigned_entry(
                    case,
                    choice,
                    org=org,
                    category_id=event.category_id,
                    reason=reason,
                    seq=1,
                    now=now,
                    causation_id=event.event_id,
                )
            )
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
        await record(conn, str(case["id"]), entries, now=now)
        if choice is not None:
            await touch_member(conn, choice.member.member_id, now)

    async def when_feedback_given_close_or_reopen(
        self, conn: AsyncConnection, event: FeedbackGiven
    ) -> None:
        """The resident's word on a resolved case: "resolved" closes it; "not resolved" reopens
        it one rung higher (at the top rung it stays with the top leaders, flagged). Feedback on
        a case that is not resolved changes nothing."""
        case = await get_case_by_petition(conn, str(event.petition_id))
        if case is None or case["status"] != "resolved":
            log.info(
                "feedback_ignored",
                petition_id=str(event.petition_id),
                status=case["status"] if case else None,
            )
            return
        now = self._clock.now()
        seq = case["version"] + 1
        rung = case["rung"]
        if event.resolved:
            transition(case["status"], "close")
            closed = CaseClosed(
                **envelope(
                    case, kind="closed", rung=rung, seq=seq, now=now, causation_id=event.event_id
                ),
                reason="resident_confirmed",
            )
            await change(
                conn,
                case,
                values={"status": "closed", "closed_at": now, "due_at": None, "flag": None},
                entries=[
                    Entry(
                        closed, "closed", actor="resident", detail={"reason": "resident_confirmed"}
                    )
                ],
                now=now,
            )
            return
        transition(transition(case["status"], "reopen"), "assign")
        org = await load_organisation(conn)
        choice = place(
            rung + 1,
            units=org.ladder(case["unit_id"]),
            candidates=org.candidates,
            category_id=case["category_id"],
            now=now,
        )
        reopened = CaseReopened(
            **envelope(
                case, kind="reopened", rung=rung, seq=seq, now=now, causation_id=event.event_id
            ),
            from_rung=rung,
            comment=event.comment,
        )
        entries = [
            Entry(
                reopened, "reopened", actor="resident", rung=rung, detail={"comment": event.comment}
            )
        ]
        if choice is None:
            await change(
                conn,
                case,
                values={
                    "status": "unassigned",
                    "holder_member_id": None,
                    "flag": "unassigned",
                    "due_at": None,
                },
                entries=entries,
                now=now,
            )
            return
        if choice.rung > rung:
            escalated = CaseEscalated(
                **envelope(
                    case,
                    kind="escalated",
                    rung=choice.rung,
                    seq=seq,
                    now=now,
                    causation_id=event.event_id,
                ),
                from_rung=rung,
                to_rung=choice.rung,
                reason="not_resolved",
                actor="resident",
            )
            entries.append(
                Entry(
                    escalated,
                    "escalated",
                    actor="resident",
                    rung=choice.rung,
                    detail={"from_rung": rung, "reason": "not_resolved"},
                )
            )
        entries.append(
            assigned_entry(
                case,
                choice,
                org=org,
                category_id=case["category_id"],
                reason="reopened",
                seq=seq,
                now=now,
                causation_id=event.event_id,
            )
        )
        values = placement_values(choice, org, case["category_id"], now)
        if choice.rung <= rung:
            values["flag"] = "top_rung"
        await change(conn, case, values=values, entries=entries, now=now)
        await touch_member(conn, choice.member.member_id, now)

    async def when_petition_withdrawn_close_case(
        self, conn: AsyncConnection, event: PetitionWithdrawn
    ) -> None:
        """The resident withdrew: an unfinished case ends, and whoever held it is told."""
        case = await get_case_by_petition(conn, str(event.petition_id))
        if case is None or case["status"] in FINAL:
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
        )
