"""Resolution statistics against a fixture of three cases computed by hand.

All times are local (Asia/Ho_Chi_Minh); T is 03/03/2025 08:00. Units: every member serves
`khom`; `lan` and `tai` at rung 0, the leader `bithu` at rung 1.

P1  submitted T; lan assigned T+1m (due T+3d); accepted T+1h; resolved T+5h (on time);
    resident confirms T+6h; closed.
P2  submitted T; tai assigned T+1m (due T+1d); escalated, deadline passed, T+1d+1m;
    bithu assigned T+1d+2m (due T+3d); accepted T+1d+1h; resolved T+2d (on time).
P3  submitted T; lan assigned T+1m (due T+2h); asks the resident T+30m; resumed T+3h with the
    due time moved to T+4h; resolved T+5h (late); resident says not settled T+6h; reopened
    T+6h+1m; bithu assigned T+6h+2m (due T+2d); resolved T+1d (on time).

By hand:
- lan: assigned 2; first responses 2 (1 h and 30 min); resolved 2, 1 on time; resolution
  5 h + 5 h; reopened 1; satisfied 1, not 1. On-time rate 1 / (2 + 0) = 0.5.
- tai: assigned 1; escalated 1, because of the deadline. On-time rate 0 / (0 + 1) = 0.
- bithu: assigned 2; first response 1 (P2, 1 d 1 h; P3's first response was lan's); resolved 2,
  both on time; resolution 2 d + 1 d. On-time rate 1.
- khom: received 3, assigned 5, resolved 4 with 3 on time, 1 deadline escalation: on-time rate
  3 / (4 + 1) = 0.6; average first response (3600 + 1800 + 90000) / 3 = 31800 s.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.notify.api.statistics import DateRange, date_range
from services.notify.errors import InvalidDateRange
from services.notify.facts import contributions, difference, replay
from services.notify.stats import summarise_counters
from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseQuestionAsked,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    Event,
    FeedbackGiven,
    PetitionSubmitted,
)
from tests.support import eventually

from .conftest import fake_intake, fake_routing, make_settings, running_notify, session, token

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T = datetime(2025, 3, 3, 8, 0, tzinfo=VN).astimezone(UTC)
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
P1, P2, P3 = (uuid.UUID(int=n) for n in (101, 102, 103))


def _e(cls: type[Event], pid: uuid.UUID, at: timedelta, **fields: Any) -> Event:
    if cls is not PetitionSubmitted and cls is not FeedbackGiven:
        fields.setdefault("case_id", uuid.UUID(int=pid.int + 1000))
    return cls.new(producer="test", petition_id=pid, occurred_at=T + at, **fields)


def _submitted(pid: uuid.UUID, ref: str) -> Event:
    return _e(
        PetitionSubmitted,
        pid,
        timedelta(),
        reference=ref,
        unit_id="khom",
        category_id="roads",
        title=f"Case {ref}",
        description="d",
    )


def _assigned(
    pid: uuid.UUID, at: timedelta, member: str, rung: int, due: timedelta, **kw: Any
) -> Event:
    return _e(
        CaseAssigned,
        pid,
        at,
        rung=rung,
        unit_id="khom",
        member_id=member,
        member_username=member,
        member_name=member.title(),
        member_email=f"{member}@example.org",
        due_at=T + due,
        **kw,
    )


def fixture_events() -> dict[uuid.UUID, list[Event]]:
    return {
        P1: [
            _submitted(P1, "PA-1"),
            _assigned(P1, M, "lan", 0, 3 * D),
            _e(CaseAccepted, P1, H, member_id="lan"),
            _e(CaseResolved, P1, 5 * H, member_id="lan", explanation="x"),
            _e(FeedbackGiven, P1, 6 * H, resolved=True),
            _e(CaseClosed, P1, 6 * H + M, reason="resident_confirmed"),
        ],
        P2: [
            _submitted(P2, "PA-2"),
            _assigned(P2, M, "tai", 0, D),
            _e(
                CaseEscalated,
                P2,
                D + M,
                from_rung=0,
                to_rung=1,
                reason="deadline_passed",
                from_member_id="tai",
            ),
            _assigned(P2, D + 2 * M, "bithu", 1, 3 * D, reason="escalated"),
            _e(CaseAccepted, P2, D + H, member_id="bithu"),
            _e(CaseResolved, P2, 2 * D, member_id="bithu", explanation="x"),
        ],
        P3: [
            _submitted(P3, "PA-3"),
            _assigned(P3, M, "lan", 0, 2 * H),
            _e(
                CaseQuestionAsked,
                P3,
                30 * M,
                member_id="lan",
                question_id=uuid.uuid4(),
                question="Số nhà?",
            ),
            _e(CaseResumed, P3, 3 * H, reason="answered", due_at=T + 4 * H),
            _e(CaseResolved, P3, 5 * H, member_id="lan", explanation="x"),
            _e(FeedbackGiven, P3, 6 * H, resolved=False),
            _e(CaseReopened, P3, 6 * H + M, from_rung=0),
            _assigned(P3, 6 * H + 2 * M, "bithu", 1, 2 * D, reason="reopened"),
            _e(CaseResolved, P3, D, member_id="bithu", explanation="x"),
        ],
    }


EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    ("member", "lan"): {
        "assigned": 2,
        "responded": 2,
        "response_s": 5400,
        "resolved": 2,
        "resolved_on_time": 1,
        "resolved_late": 1,
        "resolution_s": 36000,
        "escalated": 0,
        "reopened": 1,
        "satisfied": 1,
        "unsatisfied": 1,
        "on_time_rate": 0.5,
        "avg_first_response_s": 2700.0,
        "avg_resolution_s": 18000.0,
        "satisfaction_rate": 0.5,
    },
    ("member", "tai"): {
        "assigned": 1,
        "resolved": 0,
        "escalated": 1,
        "escalated_late": 1,
        "on_time_rate": 0.0,
        "avg_resolution_s": None,
    },
    ("member", "bithu"): {
        "assigned": 2,
        "responded": 1,
        "response_s": 90000,
        "resolved": 2,
        "resolved_on_time": 2,
        "resolution_s": 259200,
        "on_time_rate": 1.0,
    },
    ("unit", "khom"): {
        "received": 3,
        "assigned": 5,
        "responded": 3,
        "resolved": 4,
        "resolved_on_time": 3,
        "escalated": 1,
        "escalated_late": 1,
        "reopened": 1,
        "on_time_rate": 0.6,
        "avg_first_response_s": 31800.0,
        "satisfaction_rate": 0.5,
    },
}


def _totals(events: dict[uuid.UUID, list[Event]]) -> dict[tuple[str, str], dict[str, Any]]:
    sums: dict[tuple[str, str], dict[str, int]] = {}
    for pid, evs in events.items():
        for key, counters in contributions(replay(str(pid), evs), VN).items():
            scope, scope_id, _ = key.split("|")
            row = sums.setdefault((scope, scope_id), {})
            for name, value in counters.items():
                row[name] = row.get(name, 0) + value
    return {k: summarise_counters(v) for k, v in sums.items()}


def test_the_hand_computed_fixture_in_any_order() -> None:
    events = fixture_events()
    for seed in range(5):
        shuffled = {pid: random.Random(seed).sample(evs, len(evs)) for pid, evs in events.items()}
        totals = _totals(shuffled)
        for key, expected in EXPECTED.items():
            assert {k: totals[key][k] for k in expected} == expected, key


def test_per_petition_facts_and_rungs() -> None:
    facts = replay(str(P3), fixture_events()[P3])
    assert facts.first_response_at == T + 30 * M
    assert facts.reopen_count == 1
    assert facts.satisfied is False
    assert [(r.rung, r.member_id, r.outcome, r.on_time) for r in facts.rungs] == [
        (0, "lan", "resolved", False),
        (1, "bithu", "resolved", True),
    ]
    p2 = replay(str(P2), fixture_events()[P2])
    assert [(r.member_id, r.outcome, r.on_time) for r in p2.rungs] == [
        ("tai", "escalated", False),
        ("bithu", "resolved", True),
    ]


def test_a_late_event_moves_only_the_difference() -> None:
    events = fixture_events()[P1]
    without_submission = contributions(replay(str(P1), events[1:]), VN)
    full = contributions(replay(str(P1), events), VN)
    delta = difference(without_submission, full)
    day = "2025-03-03"
    # The submission adds the unit's "received" and the durations that need its time.
    assert delta[f"unit|khom|{day}"] == {
        "received": 1,
        "response_n": 1,
        "response_s": 3600,
        "resolution_n": 1,
        "resolution_s": 18000,
    }
    assert difference(full, full) == {}


async def test_statistics_api_matches_the_hand_computed_fixture(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    events = fixture_events()
    everything = [e for evs in events.values() for e in evs]
    random.Random(7).shuffle(everything)
    settings = make_settings(nats_url, database_url, tmp_path)
    # intake knows none of these residents: their notifications are skipped, not retried.
    async with (
        fake_intake(nats_url),
        fake_routing(nats_url) as routing,
        running_notify(settings) as notify,
    ):
        for member in ("lan", "tai", "bithu"):
            routing.add(member, member.title(), "khom", email=f"{member}@example.org")
        for event in everything:
            await notify.publish(event)

        async def all_in() -> bool:
            body = await notify.http.get(
                "/api/v1/stats/units/khom",
                params={"from": "2025-03-01", "to": "2025-03-31"},
                headers=token("leader", "bithu", unit_id="khom"),
            )
            data = body.json()
            return body.status_code == 200 and data["resolved"] == 4 and data["received"] == 3

        await eventually(all_in, what="every event counted")
        consumers = notify.app.state.runtime.consumers

        async def settled() -> bool:
            return consumers.stats.handled == len(everything)

        await eventually(settled, what="every event handled")
        for (scope, scope_id), expected in EXPECTED.items():
            path = f"/api/v1/stats/{scope}s/{scope_id}"
            response = await notify.http.get(
                path, params={"from": "2025-03-01", "to": "2025-03-31"}, headers=token("admin")
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert {k: body[k] for k in expected} == expected, (scope, scope_id)

        # A range picks the days: bithu on 04/03..05/03 resolved P3 (04/03) and P2 (05/03),
        # was given P2 (04/03) but not P3 (03/03).
        bithu = (
            await notify.http.get(
                "/api/v1/stats/members/bithu",
                params={"from": "2025-03-04", "to": "2025-03-05"},
                headers=token("leader", "bithu", unit_id="khom"),
            )
        ).json()
        assert (bithu["assigned"], bithu["resolved"], bithu["from"]) == (1, 2, "2025-03-04")
        tai_first_day = (
            await notify.http.get(
                "/api/v1/stats/members/tai",
                params={"from": "2025-03-03", "to": "2025-03-03"},
                headers=token("leader", "bithu", unit_id="khom"),
            )
        ).json()
        assert tai_first_day["escalated"] == 0
        assert tai_first_day["on_time_rate"] is None

        p3 = (
            await notify.http.get(
                f"/api/v1/stats/petitions/{P3}", headers=token("leader", unit_id="khom")
            )
        ).json()
        assert p3["time_to_first_response_s"] == 1800
        assert p3["time_to_resolution_s"] == 86400
        assert p3["reopen_count"] == 1
        assert p3["satisfied"] is False
        assert [r["verdict"] for r in p3["rungs"]] == ["late", "on_time"]

        # Members see their own figures; not a colleague's, nor their unit's, which count
        # colleagues' petitions that the scope rule hides from them.
        lan = token("member", "lan", unit_id="khom")
        own = await notify.http.get("/api/v1/stats/members/lan", headers=lan)
        assert own.status_code == 200
        other = await notify.http.get("/api/v1/stats/members/tai", headers=lan)
        assert other.status_code == 403
        unit = await notify.http.get("/api/v1/stats/units/khom", headers=lan)
        assert unit.status_code == 403
        elsewhere = await notify.http.get(
            "/api/v1/stats/units/khom", headers=token("leader", "x", unit_id="other")
        )
        assert elsewhere.status_code == 403
        backwards = await notify.http.get(
            "/api/v1/stats/units/khom",
            params={"from": "2025-03-05", "to": "2025-03-01"},
            headers=token("admin"),
        )
        assert backwards.status_code == 422

        page = await notify.http.get(
            "/", params={"from": "2025-03-01", "to": "2025-03-31"}, cookies=session("admin")
        )
        assert "khom" in page.text
        assert "60%" in page.text

        async def deliveries_settled() -> bool:
            rows = await notify.notifications()
            return all(r["status"] in ("sent", "skipped") for r in rows)

        await eventually(deliveries_settled, what="every notification sent or skipped")


@pytest.mark.parametrize("day", [date(2025, 3, 3)])
def test_days_are_local(day: date) -> None:
    # 23:30 UTC on 02/03 is 06:30 on 03/03 in Vietnam.
    late_utc = datetime(2025, 3, 2, 23, 30, tzinfo=UTC)
    event = PetitionSubmitted.new(
        producer="t",
        petition_id=P1,
        occurred_at=late_utc,
        reference="r",
        unit_id="khom",
        category_id="c",
        title="t",
        description="d",
    )
    assert list(contributions(replay(str(P1), [event]), VN)) == [f"unit|khom|{day.isoformat()}"]


def test_a_range_is_local_days_up_to_today_and_refused_when_reversed_or_too_long() -> None:
    today = date(2025, 3, 3)
    assert date_range(DateRange(), today=today) == (date(2025, 2, 2), today)
    only_end = DateRange.model_validate({"to": "2025-01-31"})
    assert date_range(only_end, today=today) == (date(2025, 1, 2), date(2025, 1, 31))
    # The first days of the calendar have fewer than 30 days before them: no overflow, no 500.
    earliest = DateRange.model_validate({"to": "0001-01-05"})
    assert date_range(earliest, today=today) == (date.min, date(1, 1, 5))
    with pytest.raises(InvalidDateRange):
        date_range(DateRange.model_validate({"from": "2025-03-04"}), today=today)
    with pytest.raises(InvalidDateRange):
        date_range(
            DateRange.model_validate({"from": "2000-01-01", "to": "2025-01-01"}), today=today
        )
    # `to=0` is not 1 January 1970.
    with pytest.raises(ValidationError):
        DateRange.model_validate({"to": "0"})
