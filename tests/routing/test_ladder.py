"""The ladder file (errors name the line; overrides per category and unit) and the decisions the
sweep takes for due deadlines, without servers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.routing.escalation import CaseView, DueRow, decide
from services.routing.ladder import Holder, LadderFileError, default_ladder, parse_ladder

GOOD = """\
calendar:
  office_hours: ["08:00-12:00"]
ladder:
  - {holder: member, acknowledge: 4h, resolve: 2d}
  - {holder: leader, acknowledge: 2h, resolve: 1d}
  - {holder: parent, acknowledge: 2h, resolve: 1d}
categories:
  security_order:
    - {holder: member, acknowledge: 30m, resolve: 4h}
    - {holder: parent, acknowledge: 1h, resolve: 4h}
units:
  ward:
    calendar: {days_off: [2026-03-05]}
    categories:
      other:
        - {holder: leader, acknowledge: 1h, resolve: 1d}
"""


def test_the_shipped_ladder_loads() -> None:
    ladder = default_ladder()
    assert [str(r.holder) for r in ladder.default] == ["member", "leader", "parent", "parent-2"]
    assert ladder.policy.reminder_fractions == (0.5, 0.8)
    assert ladder.policy.declines_before_leader == 2


def test_categories_and_units_override_the_default() -> None:
    ladder = parse_ladder(GOOD)
    hamlet = ["hamlet", "ward", "province"]
    assert [str(r.holder) for r in ladder.rungs(hamlet, "roads")] == ["member", "leader", "parent"]
    security = ladder.rungs(hamlet, "security_order")
    assert ladder.holders(hamlet, "security_order") == [
        Holder(0, "member"),
        Holder(1, "leader"),
    ]
    assert str(security[0].resolve) == "4h"
    # The ward's override reaches the hamlet below it, for its category only.
    assert [str(r.holder) for r in ladder.rungs(hamlet, "other")] == ["leader"]
    assert ladder.calendar_for(hamlet).day_length.total_seconds() == 4 * 3600
    assert not ladder.calendar_for(hamlet).is_working_day(date(2026, 3, 5))
    assert ladder.calendar_for(["elsewhere"]).is_working_day(date(2026, 3, 5))


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("ladder:\n  - {holder: member, acknowledge: 4h, resolve: soon}\n", 2, "resolve"),
        (
            "ladder:\n  - {holder: member, acknowledge: 4h, resolve: 1d}\n  - {holder: boss, acknowledge: 1h, resolve: 1d}\n",
            3,
            "holder",
        ),
        (
            "ladder:\n  - {holder: leader, acknowledge: 4h, resolve: 1d}\n  - {holder: member, acknowledge: 1h, resolve: 1d}\n",
            3,
            "above",
        ),
        ("ladder:\n  - holder: member\n    acknowledge: 3d\n    resolve: 1d\n", 3, "longer"),
        ("ladder:\n  - {holder: member, acknowledge: 4h}\n", 2, "resolve"),
        (
            "ladder:\n  - {holder: member, acknowledge: 4h, resolve: 1d}\ncalendar:\n  office_hours: ['13:00-12:00']\n",
            4,
            "office",
        ),
        (
            "ladder:\n  - {holder: member, acknowledge: 4h, resolve: 1d}\ncalendar:\n  days_off: [2026-13-01]\n",
            4,
            "date",
        ),
        (
            "ladder:\n  - {holder: member, acknowledge: 4h, resolve: 1d}\npolicy:\n  reminders: [0.5, 2]\n",
            4,
            "reminders",
        ),
        (
            "ladder:\n  - {holder: member, acknowledge: 4h, resolve: 1d}\nescalation: {}\n",
            3,
            "unknown key",
        ),
        ("calendar: {}\n", 1, "ladder"),
        (
            "ladder:\n  - {holder: member, acknowledge: 4h, resolve: 1d}\nladder: []\n",
            3,
            "duplicate",
        ),
        ("ladder: [\n", 2, "YAML"),
    ],
)
def test_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(LadderFileError) as caught:
        parse_ladder(text, path="ladder.yaml")
    assert caught.value.line == line, str(caught.value)
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"ladder.yaml:{line}: ")


NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def row(i: int, kind: str, rung: int = 0, fraction: float | None = None) -> DueRow:
    return DueRow(i, kind, rung, NOW, fraction)


def test_a_passed_deadline_escalates_once_whatever_else_is_due() -> None:
    case = CaseView("accepted", 0, None)
    decision = decide(
        case, [row(1, "reminder", fraction=0.8), row(2, "resolve")], in_office_hours=True
    )
    assert decision.escalate
    assert set(decision.done) == {1, 2}
    assert decision.remind is None


def test_acknowledgement_matters_only_until_accepted() -> None:
    assert decide(CaseView("assigned", 0, None), [row(1, "ack")], in_office_hours=True).escalate
    accepted = decide(CaseView("accepted", 0, None), [row(1, "ack")], in_office_hours=True)
    assert (accepted.escalate, accepted.done) == (False, (1,))


def test_stale_rows_and_closed_cases_do_nothing() -> None:
    assert not decide(CaseView("resolved", 0, None), [row(1, "resolve")], in_office_hours=True).acts
    moved = decide(CaseView("assigned", 1, None), [row(1, "resolve", rung=0)], in_office_hours=True)
    assert (moved.acts, moved.done) == (False, (1,))


def test_reminders_wait_for_office_hours_and_only_the_latest_is_sent() -> None:
    case = CaseView("accepted", 0, None)
    due = [row(1, "reminder", fraction=0.5), row(2, "reminder", fraction=0.8), row(3, "heads_up")]
    night = decide(case, due, in_office_hours=False)
    assert (night.acts, set(night.postpone)) == (False, {1, 2, 3})
    day = decide(case, due, in_office_hours=True)
    assert day.remind is not None
    assert day.remind.fraction == 0.8
    assert day.heads_up is not None
    assert set(day.done) == {1, 2, 3}


def test_a_paused_case_only_resumes_after_the_longest_wait() -> None:
    case = CaseView("waiting_for_resident", 0, None)
    assert decide(case, [row(1, "max_wait")], in_office_hours=False).resume
    assert not decide(case, [row(1, "resolve")], in_office_hours=True).acts


def test_at_the_top_only_the_daily_notice_remains() -> None:
    case = CaseView("accepted", 2, "overdue_top")
    decision = decide(case, [row(1, "top_daily", rung=2)], in_office_hours=True)
    assert decision.top_daily is not None
    assert not decision.escalate
