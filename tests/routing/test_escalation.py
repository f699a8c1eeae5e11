"""The ladder in a running routing service with a fixed clock, on a real nats-server, SQLite and
PostgreSQL: deadlines pass, cases climb, reminders go in office hours, holders decline and ask,
residents answer and ask to escalate, members go away, leaders decide. The sweep is driven by
hand (`run_once`) after the clock is moved; its background loop runs too, and may take a pass
first: the assertions hold either way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.routing import models
from services.routing.app import create_app
from services.routing.cases import get_case
from services.routing.escalation import Planned
from services.routing.scheduled import Sweep
from services.routing.settings import Settings
from shared.clock import FixedClock
from shared.events import EscalationRequested, ResidentAnswered
from tests.routing.test_flow import (
    HAMLET_LEADER,
    ROADS_MEMBER,
    Routing,
    open_case,
    submitted,
)
from tests.support import connect_nats, eventually, service_nats

VN = timezone(timedelta(hours=7))
# A Monday morning in Vietnam, away from holidays.
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=VN)
COMMUNE_LEADER = "danguy.myhoahung"


class Clocked(Routing):
    clock: FixedClock

    @property
    def sweep(self) -> Sweep:
        sweep: Sweep = self.app.state.sweep
        return sweep

    async def case(self, case_id: str) -> dict[str, Any]:
        async with self.runtime.engine.connect() as conn:
            row = await get_case(conn, case_id)
        assert row is not None
        return dict(row)

    async def at(self, when: datetime) -> None:
        """Move the clock and run a sweep pass."""
        self.clock.set(when)
        await self.sweep.run_once()

    async def flushed(self, subject: str | None = None) -> list[dict[str, Any]]:
        """Events on the stream once the outbox is empty."""
        while await self.runtime.relay.backlog():
            await self.runtime.relay.publish_pending()
        return [e for _, e in await self.events(subject)]

    async def act(
        self, username: str, case_id: str, action: str, body: Any = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/cases/{case_id}/{action}", json=body, headers=await self.token(username)
        )


@pytest.fixture
async def routing(nats_url: str, database_url: str) -> AsyncIterator[Clocked]:
    clock = FixedClock(MONDAY)
    settings = Settings(
        env="test",
        **service_nats(nats_url, "routing"),
        database_url=database_url,
        seed_demo=True,
        max_deliver=3,
        sweep_interval_s=3600,
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        nc = await connect_nats(nats_url)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://routing"
            ) as client:
                r = Clocked(app, client, nc.jetstream())
                r.clock = clock
                yield r
        finally:
            await nc.close()


async def pending_deadlines(
    routing: Clocked, case_id: str
) -> dict[tuple[str, float | None], datetime]:
    """The case's pending deadlines: its row and those riding on it."""
    async with routing.runtime.engine.connect() as conn:
        d = models.deadlines
        rows = (
            await conn.execute(
                select(d.c.kind, d.c.fraction, d.c.due_at, d.c.later).where(
                    d.c.case_id == case_id, d.c.done_at.is_(None)
                )
            )
        ).all()
    planned = {}
    for r in rows:
        planned[(r.kind, r.fraction)] = r.due_at
        for item in r.later or ():
            p = Planned.from_json(item)
            planned[(p.kind, p.fraction)] = p.due_at
    return planned


def escalations(events: list[dict[str, Any]], case_id: str) -> list[tuple[int, int, str]]:
    return [(e["from_rung"], e["to_rung"], e["reason"]) for e in events if e["case_id"] == case_id]


async def test_an_unanswered_case_climbs_to_the_top_and_leadership_is_told_daily(
    routing: Clocked,
) -> None:
    assigned = await open_case(routing, submitted())
    case_id = assigned["case_id"]
    assert assigned["member_username"] == ROADS_MEMBER
    assert (await routing.act(ROADS_MEMBER, case_id, "accept")).status_code == 200
    first = await routing.case(case_id)
    # Five working days from Monday 09:00 is the next Monday 09:00.
    assert first["due_at"] == datetime(2026, 3, 9, 9, 0, tzinfo=VN)

    await routing.at(first["due_at"] - timedelta(minutes=1))
    assert (await routing.case(case_id))["rung"] == 0
    await routing.at(first["due_at"] + timedelta(minutes=1))
    at_leader = await routing.case(case_id)
    assert (at_leader["rung"], at_leader["status"], at_leader["flag"]) == (1, "assigned", "overdue")

    # The leader does not even acknowledge: four working hours later it goes to the commune.
    await routing.at(at_leader["ack_due_at"] + timedelta(minutes=1))
    at_commune = await routing.case(case_id)
    assert at_commune["rung"] == 2
    await routing.act(COMMUNE_LEADER, case_id, "accept")

    # Nobody leads the province: past the commune's deadline the case stays, flagged.
    top_due = (await routing.case(case_id))["due_at"]
    await routing.at(top_due + timedelta(minutes=1))
    await routing.at(top_due + timedelta(minutes=2))
    at_top = await routing.case(case_id)
    assert (at_top["rung"], at_top["status"], at_top["flag"]) == (2, "accepted", "overdue_top")

    events = await routing.flushed("escalated")
    assert escalations(events, case_id) == [(0, 1, "deadline_passed"), (1, 2, "deadline_passed")]
    assigned_to = [
        (e["member_username"], e["previous_member_id"])
        for e in await routing.flushed("assigned")
        if e["case_id"] == case_id
    ]
    assert assigned_to == [
        (ROADS_MEMBER, None),
        (HAMLET_LEADER, ROADS_MEMBER),
        (COMMUNE_LEADER, HAMLET_LEADER),
    ]
    (notice,) = await routing.flushed("overdue_at_top")
    assert notice["rung"] == 2
    assert "danguy.myhoahung" in notice["member_ids"]

    # Told again the next working day, once.
    next_day = top_due + timedelta(days=1)
    await routing.at(next_day + timedelta(hours=1))
    await routing.sweep.run_once()
    days = [e["day"] for e in await routing.flushed("overdue_at_top")]
    assert len(days) == 2
    assert len(set(days)) == 2


async def test_a_case_resolved_just_before_its_deadline_never_escalates(routing: Clocked) -> None:
    case_id = (await open_case(routing, submitted()))["case_id"]
    await routing.act(ROADS_MEMBER, case_id, "accept")
    due = (await routing.case(case_id))["due_at"]
    routing.clock.set(due - timedelta(seconds=1))
    resolved = await routing.act(ROADS_MEMBER, case_id, "resolve", {"explanation": "Đã thay bóng"})
    assert resolved.status_code == 200
    # Two days on, well inside the quiet period: nothing of the rung is pending any more.
    await routing.at(due + timedelta(days=2))
    assert (await routing.case(case_id))["status"] == "resolved"
    assert await routing.flushed("escalated") == []
    async with routing.runtime.engine.connect() as conn:
        d = models.deadlines
        pending = (
            await conn.scalars(
                select(d.c.kind).where(d.c.case_id == case_id, d.c.done_at.is_(None))
            )
        ).all()
    assert pending == ["quiet_close"]


async def test_two_sweeps_at_once_escalate_each_case_once(routing: Clocked) -> None:
    ids = [(await open_case(routing, submitted()))["case_id"] for _ in range(12)]
    latest = max([(await routing.case(i))["ack_due_at"] for i in ids])
    routing.clock.set(latest + timedelta(minutes=1))
    second = Sweep(
        engine=routing.runtime.engine,
        ladder=routing.app.state.ladder,
        clock=routing.clock,
        batch_size=5,
    )
    await asyncio.gather(routing.sweep.run_once(), second.run_once(), second.run_once())
    events = await routing.flushed("escalated")
    assert sorted(e["case_id"] for e in events) == sorted(ids)
    assert {e["reason"] for e in events} == {"deadline_passed"}


async def test_reminders_go_in_office_hours_and_the_next_rung_is_warned(routing: Clocked) -> None:
    case_id = (await open_case(routing, submitted()))["case_id"]
    await routing.act(ROADS_MEMBER, case_id, "accept")
    planned = await pending_deadlines(routing, case_id)
    half = planned[("reminder", 0.5)]
    # Due in office hours; the sweep only comes round that evening: it waits for the morning.
    evening = half.astimezone(VN).replace(hour=19, minute=0)
    await routing.at(evening)
    assert await routing.flushed("reminder_due") == []
    await routing.at(evening.replace(hour=7, minute=31) + timedelta(days=1))
    (reminder,) = await routing.flushed("reminder_due")
    assert (reminder["kind"], reminder["fraction"], reminder["member_id"]) == (
        "holder",
        0.5,
        ROADS_MEMBER,
    )
    await routing.at(planned[("heads_up", None)] + timedelta(minutes=1))
    kinds = [(e["kind"], e["member_id"]) for e in await routing.flushed("reminder_due")]
    assert ("next_rung", HAMLET_LEADER) in kinds
    assert ("holder", ROADS_MEMBER) in kinds  # the 80% one, due before the heads-up


async def test_declines_reroute_and_the_third_goes_to_the_leader(routing: Clocked) -> None:
    case_id = (await open_case(routing, submitted()))["case_id"]
    bad = await routing.act(ROADS_MEMBER, case_id, "decline", {"reason_code": "bored"})
    assert bad.status_code == 422
    holders = [ROADS_MEMBER]
    for reason in ("not_my_area", "conflict_of_interest", "away"):
        response = await routing.act(holders[-1], case_id, "decline", {"reason_code": reason})
        assert response.status_code == 200, response.text
        holders.append(response.json()["holder_username"])
    assert len(set(holders[:3])) == 3
    assert holders[3] == HAMLET_LEADER
    assert (await routing.case(case_id))["rung"] == 1
    declined = await routing.flushed("declined")
    assert [e["reason_code"] for e in declined] == ["not_my_area", "conflict_of_interest", "away"]
    assert escalations(await routing.flushed("escalated"), case_id) == [(0, 1, "declined")]
    # Only the holder declines.
    other = await routing.act(ROADS_MEMBER, case_id, "decline", {"reason_code": "away"})
    assert other.status_code == 403


async def test_a_question_stops_the_clock_until_the_answer(routing: Clocked) -> None:
    case_id = (await open_case(routing, submitted()))["case_id"]
    await routing.act(ROADS_MEMBER, case_id, "accept")
    routing.clock.set(MONDAY + timedelta(days=1))  # Tuesday 09:00: one working day used
    asked = await routing.act(ROADS_MEMBER, case_id, "ask", {"question": "Cột đèn số mấy?"})
    assert asked.status_code == 200, asked.text
    assert (asked.json()["status"], asked.json()["due_at"]) == ("waiting_for_resident", None)
    (question,) = await routing.flushed("question_asked")
    assert question["question"] == "Cột đèn số mấy?"

    # Four working days pass: nothing escalates while waiting.
    await routing.at(MONDAY + timedelta(days=7))
    assert (await routing.case(case_id))["rung"] == 0
    case = await routing.case(case_id)
    await routing.publish(
        ResidentAnswered.new(
            producer="intake",
            petition_id=uuid.UUID(case["petition_id"]),
            question_id=uuid.UUID(question["question_id"]),
            answer="Cột số 12",
        )
    )

    async def resumed() -> dict[str, Any] | None:
        c = await routing.case(case_id)
        return c if c["status"] == "accepted" else None

    after = await eventually(resumed, what="case resumed")
    # Four working days were left; counted again from Monday 9 March 09:00.
    assert after["due_at"] == datetime(2026, 3, 13, 9, 0, tzinfo=VN)
    (event,) = await routing.flushed("resumed")
    assert event["reason"] == "answered"

    # Asked again and never answered: the clock restarts after the longest wait (5 days).
    await routing.act(ROADS_MEMBER, case_id, "ask", {"question": "Còn tối không?"})
    await routing.at(MONDAY + timedelta(days=7, hours=1))
    assert (await routing.case(case_id))["status"] == "waiting_for_resident"
    await routing.at(MONDAY + timedelta(days=14))
    assert [e["reason"] for e in await routing.flushed("resumed")] == ["answered", "max_wait"]


async def test_a_resident_may_escalate_an_overdue_case_once_a_day(routing: Clocked) -> None:
    case_id = (await open_case(routing, submitted()))["case_id"]
    petition_id = uuid.UUID((await routing.case(case_id))["petition_id"])

    async def request() -> None:
        await routing.publish(
            EscalationRequested.new(producer="intake", petition_id=petition_id, comment="Quá hạn")
        )

    async def handled(n: int) -> bool:
        async with routing.runtime.engine.connect() as conn:
            h = models.case_history
            count = await conn.scalar(
                select(func.count()).where(
                    h.c.case_id == case_id, h.c.kind == "escalation_requested"
                )
            )
        return count == n

    await request()
    await eventually(lambda: handled(1), what="first request handled")
    assert (await routing.case(case_id))["rung"] == 0  # not overdue yet

    await routing.at((await routing.case(case_id))["ack_due_at"] + timedelta(minutes=1))
    assert (await routing.case(case_id))["rung"] == 1
    await request()
    await eventually(lambda: handled(2), what="second request handled")
    assert (await routing.case(case_id))["rung"] == 2
    await request()
    await eventually(lambda: handled(3), what="third request handled")
    assert (await routing.case(case_id))["rung"] == 2  # once a day
    assert escalations(await routing.flushed("escalated"), case_id) == [
        (0, 1, "deadline_passed"),
        (1, 2, "resident_request"),
    ]


async def test_an_absent_member_hands_over_and_gets_nothing_new(routing: Clocked) -> None:
    case_id = (await open_case(routing, submitted()))["case_id"]
    members = await routing.client.get("/api/v1/me", headers=await routing.token(ROADS_MEMBER))
    member_id = members.json()["member_id"]
    body = {
        "from": (MONDAY + timedelta(days=1)).isoformat(),
        "until": (MONDAY + timedelta(days=5)).isoformat(),
    }
    refused = await routing.client.post(
        f"/api/v1/members/{member_id}/absence", json=body, headers=await routing.token("dokimhanh")
    )
    assert refused.status_code == 403
    ok = await routing.client.post(
        f"/api/v1/members/{member_id}/absence",
        json=body,
        headers=await routing.token(HAMLET_LEADER),
    )
    assert ok.status_code == 200, ok.text
    await routing.at(MONDAY + timedelta(hours=2))
    assert (await routing.case(case_id))["holder_member_id"] == member_id  # not yet away
    await routing.at(MONDAY + timedelta(days=1, minutes=1))
    moved = await routing.case(case_id)
    assert (moved["rung"], moved["holder_member_id"]) == (1, HAMLET_LEADER)
    reasons = [e["reason"] for e in await routing.flushed("assigned") if e["case_id"] == case_id]
    assert reasons == ["initial", "absent"]
    fresh = await open_case(routing, submitted())
    assert fresh["member_username"] != ROADS_MEMBER


async def test_leaders_take_over_escalate_and_leadership_rejects(routing: Clocked) -> None:
    case_id = (await open_case(routing, submitted()))["case_id"]
    assert (await routing.act(ROADS_MEMBER, case_id, "escalate", {})).status_code == 403
    taken = await routing.act(HAMLET_LEADER, case_id, "take-over")
    assert taken.status_code == 200, taken.text
    assert (taken.json()["rung"], taken.json()["status"]) == (1, "accepted")
    up = await routing.act(HAMLET_LEADER, case_id, "escalate", {"comment": "Cần xã quyết"})
    assert (up.status_code, up.json()["holder_username"]) == (200, COMMUNE_LEADER)
    top = await routing.act(COMMUNE_LEADER, case_id, "escalate", {})
    assert top.status_code == 409
    assert (await routing.act(HAMLET_LEADER, case_id, "reject", {"reason": "x"})).status_code == 403
    rejected = await routing.act(COMMUNE_LEADER, case_id, "reject", {"reason": "Ngoài thẩm quyền"})
    assert rejected.json()["status"] == "rejected"
    events = await routing.flushed()
    assert escalations([e for e in events if "to_rung" in e], case_id) == [
        (0, 1, "leader_decision"),
        (1, 2, "leader_decision"),
    ]
    (reject,) = [e for e in events if e.get("reason") == "Ngoài thẩm quyền"]
    assert reject["actor"] == COMMUNE_LEADER


async def test_nobody_at_the_first_rung_is_an_escalation(routing: Clocked) -> None:
    # Residential group 1 has no member for roads and no leader of its own: its neighbourhood's
    # leader (the parent, rung 2) takes it.
    event = submitted(unit_id="my-thoi-thoi-an-a-to-1", category_id="roads_lighting")
    assigned = await open_case(routing, event)
    assert (assigned["rung"], assigned["member_username"]) == (2, "bithu.thoiana")
    escalated = await routing.flushed("escalated")
    assert escalations(escalated, assigned["case_id"]) == [(0, 2, "nobody_available")]


async def test_migrations_match_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.routing.app import MIGRATIONS_DIR
    from services.routing.models import metadata
    from shared.db import create_engine
    from shared.migrate import upgrade_async

    await upgrade_async(MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == []
    finally:
        await engine.dispose()
