"""Working time with a fixed clock: weekends, Tết 2026 and 2027, make-up days, office hours,
pauses. Times are written in Vietnam time (UTC+7) and compared as aware datetimes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from services.routing.calendar import CalendarSpec, WorkingCalendar
from services.routing.escalation import plan_rung
from services.routing.ladder import Duration, Holder, Policy, Rung

VN = timezone(timedelta(hours=7))
CAL = WorkingCalendar()


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def test_office_hours_skip_lunch_and_evening() -> None:
    monday = vn(2026, 3, 2, 9, 0)
    assert CAL.add_working(monday, hours(2)) == vn(2026, 3, 2, 11, 0)
    assert CAL.add_working(monday, hours(3)) == vn(2026, 3, 2, 14, 0)  # 11:30 → 13:30
    assert CAL.add_working(monday, hours(7)) == vn(2026, 3, 3, 8, 30)  # 17:00 → 07:30 next day
    assert CAL.add_working(vn(2026, 3, 2, 12, 0), hours(1)) == vn(2026, 3, 2, 14, 30)
    assert CAL.add_working(vn(2026, 3, 2, 20, 0), hours(0)) == vn(2026, 3, 3, 7, 30)
    assert CAL.day_length == hours(7.5)


def test_weekends_do_not_count() -> None:
    friday = vn(2026, 3, 6, 16, 0)
    assert CAL.add_working(friday, hours(2)) == vn(2026, 3, 9, 8, 30)
    assert CAL.working_between(friday, vn(2026, 3, 9, 8, 30)) == hours(2)
    assert CAL.working_between(vn(2026, 3, 7, 9, 0), vn(2026, 3, 8, 17, 0)) == timedelta()


def test_tet_2026_stops_the_clock_for_the_whole_holiday() -> None:
    # Tết Bính Ngọ: Mon 16 – Fri 20 Feb 2026 off, with the weekends either side.
    for day in range(14, 23):
        assert not CAL.is_working_day(date(2026, 2, day)), day
    assert CAL.is_working_day(date(2026, 2, 13))
    assert CAL.is_working_day(date(2026, 2, 23))
    # Five working days given on the morning of the Friday before Tết: that Friday, then
    # Monday to Thursday after it.
    start = vn(2026, 2, 13, 7, 30)
    assert CAL.add_working(start, CAL.day_length * 5) == vn(2026, 2, 26, 17, 0)
    assert CAL.add_working(vn(2026, 2, 13, 15, 0), hours(8)) == vn(2026, 2, 23, 15, 30)


def test_tet_2027_and_its_extra_eve_day() -> None:
    # Tết Đinh Mùi: Thu 4 – Wed 10 Feb 2027 off (29th of the lunar year included).
    off = [d for d in range(1, 15) if not CAL.is_working_day(date(2027, 2, d))]
    assert off == [4, 5, 6, 7, 8, 9, 10, 13, 14]
    assert CAL.add_working(vn(2027, 2, 3, 16, 0), hours(2)) == vn(2027, 2, 11, 8, 30)


def test_make_up_saturdays_and_extra_days_off() -> None:
    # 22 Aug 2026 is a Saturday worked in exchange for Mon 31 Aug (from the holidays package).
    assert CAL.is_working_day(date(2026, 8, 22))
    assert not CAL.is_working_day(date(2026, 8, 31))
    local = WorkingCalendar(
        CalendarSpec(
            make_up_days=frozenset({date(2026, 3, 7)}), days_off=frozenset({date(2026, 3, 9)})
        )
    )
    assert local.add_working(vn(2026, 3, 6, 16, 0), hours(2)) == vn(2026, 3, 7, 8, 30)
    assert local.add_working(vn(2026, 3, 7, 16, 0), hours(2)) == vn(2026, 3, 10, 8, 30)


def test_custom_office_hours() -> None:
    cal = WorkingCalendar(CalendarSpec(office_hours=((time(8, 0), time(12, 0)),)))
    assert cal.add_working(vn(2026, 3, 2, 11, 0), hours(2)) == vn(2026, 3, 3, 9, 0)
    assert cal.in_office_hours(vn(2026, 3, 2, 8, 0))
    assert not cal.in_office_hours(vn(2026, 3, 2, 12, 0))
    assert cal.next_office_time(vn(2026, 3, 2, 12, 0)) == vn(2026, 3, 3, 8, 0)


def test_working_between_and_add_working_agree() -> None:
    start = vn(2026, 2, 12, 10, 17)
    for n in (0.5, 3, 7.5, 20, 61):
        end = CAL.add_working(start, hours(n))
        assert CAL.working_between(start, end) == hours(n)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CAL.add_working(datetime(2026, 3, 2, 9, 0), hours(1))


RUNG = Rung(Holder(0, "member"), acknowledge=Duration(1, "d"), resolve=Duration(2, "d"))
POLICY = Policy(reminder_fractions=(0.5, 0.8), heads_up_before=Duration(2, "h"))


def test_a_rung_plans_deadlines_reminders_and_heads_up_in_working_time() -> None:
    plan = plan_rung(CAL, RUNG, POLICY, vn(2026, 2, 12, 9, 0))
    kinds = {(p.kind, p.fraction): p.due_at for p in plan.rows}
    # 2 working days = 15 working hours: 6h left on Thu 12, 7.5h on Fri 13, then Tết.
    assert plan.due_at == vn(2026, 2, 23, 9, 0)
    assert plan.ack_due_at == vn(2026, 2, 13, 9, 0)
    assert kinds[("reminder", 0.5)] == CAL.add_working(vn(2026, 2, 12, 9, 0), hours(7.5))
    # Two working hours before Monday 09:00 after Tết is the Friday before it, 16:30.
    assert kinds[("heads_up", None)] == vn(2026, 2, 13, 16, 30)
    assert CAL.working_between(kinds[("heads_up", None)], plan.due_at) == hours(2)


def test_a_pause_keeps_the_working_time_that_was_left() -> None:
    start = vn(2026, 3, 2, 9, 0)
    plan = plan_rung(CAL, RUNG, POLICY, start)
    asked = vn(2026, 3, 3, 9, 0)  # one working day used, 7.5h left
    left = CAL.working_between(asked, plan.due_at)
    assert left == hours(7.5)
    answered = vn(2026, 3, 10, 14, 0)  # a week later: the wait does not count
    resumed = plan_rung(CAL, RUNG, POLICY, answered, remaining=left, acknowledged=True)
    assert resumed.due_at == vn(2026, 3, 11, 14, 0)
    assert resumed.ack_due_at is None
    # The 50% reminder had gone before the pause; only the 80% one is planned again.
    assert [p.fraction for p in resumed.rows if p.kind == "reminder"] == [0.8]
