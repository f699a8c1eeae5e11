"""Quiet-period close: a resolved case the resident says nothing about is closed by the sweep
after N working days (`CaseClosed(reason="quiet_period")`), exactly once; the resident's word,
when it comes first, wins. Fixed clock, real nats-server, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from services.routing.cases import CaseConflict
from services.routing.handlers import CaseHandlers
from services.routing.scheduled import Sweep
from shared.events import FeedbackGiven, PetitionSubmitted
from tests.routing.test_escalation import Clocked, pending_deadlines
from tests.routing.test_escalation import routing as routing  # the fixture
from tests.routing.test_flow import open_case, submitted
from tests.support import eventually


async def resolved_case(routing: Clocked) -> tuple[PetitionSubmitted, str, datetime]:
    """A case accepted and resolved by its member; the time it was resolved."""
    event = submitted()
    assigned = await open_case(routing, event)
    case_id, holder = assigned["case_id"], assigned["member_username"]
    assert (await routing.act(holder, case_id, "accept")).status_code == 200
    resolved = await routing.act(holder, case_id, "resolve", {"explanation": "Đã sửa"})
    assert resolved.status_code == 200, resolved.text
    return event, case_id, routing.clock.now()


def closings(events: list[dict[str, Any]], case_id: str) -> list[str]:
    return [e["reason"] for e in events if e["case_id"] == case_id]


async def quiet_close_at(routing: Clocked, case_id: str) -> datetime:
    """When the sweep will close the case (planned once a sweep, this one or the background
    loop's, has seen the resolution)."""

    async def planned() -> datetime | None:
        await routing.sweep.run_once()
        return (await pending_deadlines(routing, case_id)).get(("quiet_close", None))

    return await eventually(planned, what="the quiet close planned")


async def test_a_quiet_resolved_case_closes_after_the_working_days_exactly_once(
    routing: Clocked,
) -> None:
    _, case_id, resolved_at = await resolved_case(routing)
    closes = await quiet_close_at(routing, case_id)
    calendar = routing.app.state.ladder.calendar_for([])
    # Seven working days of the unit's calendar, not seven calendar days.
    assert calendar.working_between(resolved_at, closes) == 7 * calendar.day_length
    assert closes - resolved_at > timedelta(days=7)

    await routing.at(closes - timedelta(minutes=1))
    assert (await routing.case(case_id))["status"] == "resolved"
    assert closings(await routing.flushed("closed"), case_id) == []

    routing.clock.set(closes + timedelta(minutes=1))
    second = Sweep(
        engine=routing.runtime.engine,
        ladder=routing.app.state.ladder,
        clock=routing.clock,
        batch_size=1,
    )
    await asyncio.gather(routing.sweep.run_once(), second.run_once(), second.run_once())
    await routing.at(closes + timedelta(days=3))
    case = await routing.case(case_id)
    assert (case["status"], case["closed_at"] is not None) == ("closed", True)
    assert closings(await routing.flushed("closed"), case_id) == ["quiet_period"]
    assert await pending_deadlines(routing, case_id) == {}


async def test_the_residents_word_first_means_no_quiet_close(routing: Clocked) -> None:
    confirmed, confirmed_id, _ = await resolved_case(routing)
    reopened, reopened_id, _ = await resolved_case(routing)
    closes = await quiet_close_at(routing, confirmed_id)
    await routing.publish(
        FeedbackGiven.new(producer="intake", petition_id=confirmed.petition_id, resolved=True)
    )
    await routing.publish(
        FeedbackGiven.new(
            producer="intake", petition_id=reopened.petition_id, resolved=False, comment="Chưa"
        )
    )

    async def answered() -> bool:
        return (await routing.case(confirmed_id))["status"] == "closed" and (
            await routing.case(reopened_id)
        )["status"] == "assigned"

    await eventually(answered, what="the resident's feedback handled")
    await routing.at(closes + timedelta(days=3))
    events = await routing.flushed("closed")
    assert closings(events, confirmed_id) == ["resident_confirmed"]
    assert closings(events, reopened_id) == []
    assert (await routing.case(reopened_id))["status"] == "assigned"


async def test_feedback_and_the_quiet_close_racing_give_one_outcome(routing: Clocked) -> None:
    """The resident's "not resolved" and the sweep's close at the same moment: the case row's
    lock decides; whichever commits second finds the case moved and changes nothing."""
    handlers = CaseHandlers(clock=routing.clock, ladder=routing.app.state.ladder)
    cases = [await resolved_case(routing) for _ in range(4)]
    closes = await quiet_close_at(routing, cases[0][1])
    routing.clock.set(closes + timedelta(minutes=1))

    async def feedback(event: PetitionSubmitted) -> None:
        async with routing.runtime.engine.begin() as conn:
            # Losing the race is a CaseConflict: the consumer retries and finds it closed.
            with contextlib.suppress(CaseConflict):
                await handlers.when_feedback_given_close_or_reopen(
                    conn,
                    FeedbackGiven.new(
                        producer="intake", petition_id=event.petition_id, resolved=False
                    ),
                )

    await asyncio.gather(routing.sweep.run_once(), *(feedback(e) for e, _, _ in cases))
    await routing.at(closes + timedelta(days=1))
    closed = await routing.flushed("closed")
    reopened = await routing.flushed("reopened")
    for _, case_id, _ in cases:
        status = (await routing.case(case_id))["status"]
        was_closed = closings(closed, case_id)
        was_reopened = [e for e in reopened if e["case_id"] == case_id]
        if status == "closed":
            assert (was_closed, was_reopened) == (["quiet_period"], [])
        else:
            assert (was_closed, len(was_reopened)) == ([], 1)
