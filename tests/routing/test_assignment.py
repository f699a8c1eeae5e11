"""The choice of a holder at each rung, without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.routing.assignment import (
    Candidate,
    Choice,
    Search,
    Trigger,
    chain,
    next_search,
    place,
    rung_of,
    rung_unit,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PARENTS: dict[str, str | None] = {
    "province": None,
    "ward": "province",
    "hamlet": "ward",
}
LADDER = chain("hamlet", PARENTS)


def member(username: str, **kw: object) -> Candidate:
    fields: dict[str, object] = {
        "member_id": username,
        "username": username,
        "name": username.title(),
        "unit_id": "hamlet",
        "role": "member",
        "categories": frozenset({"roads_lighting"}),
        "capacity": 5,
    }
    fields.update(kw)
    return Candidate(**fields)  # type: ignore[arg-type]


LEADER = member("leader", role="leader", categories=frozenset({"*"}))
WARD = member("ward", role="leader", unit_id="ward", categories=frozenset({"*"}))


def choose(*candidates: Candidate, rung: int = 0, category: str = "roads_lighting") -> Choice:
    choice = place(rung, units=LADDER, candidates=list(candidates), category_id=category, now=NOW)
    assert choice is not None
    return choice


def test_fewest_open_cases_first() -> None:
    choice = choose(member("an", open_cases=2), member("binh", open_cases=1), LEADER)
    assert choice is not None
    assert (choice.member.username, choice.rung, choice.outcome) == ("binh", 0, "initial")


def test_ties_go_to_the_longest_idle_then_username() -> None:
    recent = member("an", last_assigned_at=NOW - timedelta(hours=1))
    older = member("binh", last_assigned_at=NOW - timedelta(days=3))
    assert choose(recent, older).member.username == "binh"
    never = member("cuong", last_assigned_at=None)
    assert choose(recent, older, never).member.username == "cuong"
    assert choose(member("dung"), member("cuong")).member.username == "cuong"


def test_only_members_who_handle_the_category() -> None:
    choice = choose(member("an", categories=frozenset({"other"})), member("binh"))
    assert choice is not None
    assert choice.member.username == "binh"
    everything = member("an", categories=frozenset({"*"}), open_cases=0)
    assert choose(everything, member("binh", open_cases=1)).member.username == "an"


def test_away_inactive_and_full_members_are_skipped() -> None:
    away = member("an", away_from=NOW - timedelta(days=1), away_until=NOW + timedelta(days=1))
    back = member("binh", away_from=NOW - timedelta(days=5), away_until=NOW - timedelta(days=1))
    inactive = member("cuong", active=False)
    full = member("dung", capacity=2, open_cases=2)
    choice = choose(away, inactive, full, back, LEADER)
    assert choice is not None
    assert choice.member.username == "binh"
    choice = choose(away, inactive, full, LEADER)
    assert choice is not None
    assert (choice.member.username, choice.rung, choice.outcome) == ("leader", 1, "no_member")


def test_no_member_and_no_unit_leader_goes_to_the_parent_leaders() -> None:
    choice = choose(member("an", categories=frozenset({"other"})), WARD)
    assert choice is not None
    assert (choice.member.username, choice.rung, choice.unit_id, choice.outcome) == (
        "ward",
        2,
        "ward",
        "no_member",
    )


def test_rungs_map_to_units() -> None:
    assert [rung_unit(r, LADDER) for r in range(5)] == [
        "hamlet",
        "hamlet",
        "ward",
        "province",
        None,
    ]
    assert rung_of(LEADER, LADDER) == 1
    assert rung_of(WARD, LADDER) == 2
    assert rung_of(member("x"), LADDER) == 0
    assert rung_of(member("y", unit_id="elsewhere"), LADDER) is None


def test_past_the_top_the_case_stays_with_the_highest_leaders() -> None:
    # Nobody leads the province: escalating from the ward's rung keeps the ward's leader.
    choice = choose(LEADER, WARD, rung=3)
    assert choice is not None
    assert (choice.member.username, choice.rung, choice.outcome) == ("ward", 2, "top")
    assert choose(LEADER, WARD, rung=7).outcome == "top"


def test_an_empty_ladder_places_nobody() -> None:
    assert place(0, units=LADDER, candidates=[], category_id="x", now=NOW) is None
    assert place(0, units=[], candidates=[LEADER], category_id="x", now=NOW) is None


@pytest.mark.parametrize(
    ("trigger", "rung", "decliners", "expected"),
    [
        ("submitted", 3, (), Search(0)),
        ("declined", 0, (), Search(0, frozenset({"lan"}))),
        ("declined", 0, ("an",), Search(0, frozenset({"an", "lan"}))),
        # The third decline at the first rung goes to the leader, not to a third member.
        ("declined", 0, ("an", "binh"), Search(1, frozenset({"an", "binh", "lan"}))),
        ("declined", 2, ("an", "binh"), Search(2, frozenset({"an", "binh", "lan"}))),
        ("reopened", 1, (), Search(2)),
        ("escalated", 1, (), Search(2, climb=True)),
        ("next_rung", 0, (), Search(1, climb=True)),
        ("absent", 0, (), Search(1, frozenset({"lan"}))),
        ("absent", 2, (), Search(2, frozenset({"lan"}))),
    ],
)
def test_who_holds_a_case_next(
    trigger: Trigger, rung: int, decliners: tuple[str, ...], expected: Search
) -> None:
    leaving = None if trigger in ("submitted", "reopened", "escalated", "next_rung") else "lan"
    found = next_search(
        trigger, rung=rung, leaving=leaving, decliners=decliners, declines_before_leader=2
    )
    assert found == expected
