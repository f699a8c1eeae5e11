"""Who may do what on a case (`permissions.permissions`), row by row, without servers."""

from __future__ import annotations

import pytest

from services.routing.permissions import (
    ACTIONS,
    WHO_MAY,
    CaseFacts,
    by_role,
    may_list_unit,
    may_mark_away,
    may_see,
    permissions,
)
from shared.auth import Staff

# A residential group below a hamlet below a ward.
UNITS = ("group", "hamlet", "ward")

HOLDER = Staff(username="lan", member_id="lan", role="member", unit_id="group")
OTHER_MEMBER = Staff(username="binh", member_id="binh", role="member", unit_id="group")
GROUP_LEADER = Staff(username="to.truong", member_id="to.truong", role="leader", unit_id="group")
HAMLET_LEADER = Staff(username="bithu", member_id="bithu", role="leader", unit_id="hamlet")
WARD_LEADER = Staff(username="danguy", member_id="danguy", role="leader", unit_id="ward")
ELSEWHERE = Staff(username="xa", member_id="xa", role="leader", unit_id="other-ward")
ADMIN = Staff(username="admin", member_id=None, role="admin", unit_id=None)


def case(status: str, holder: str | None = "lan") -> CaseFacts:
    return CaseFacts(status=status, holder_member_id=holder, units=UNITS)


HOLDER_OPEN = {"accept", "ask", "decline", "note", "resolve"}
LEADER_ASSIGNED = {"note", "resolve", "reassign", "escalate", "take-over"}


@pytest.mark.parametrize(
    ("staff", "status", "expected"),
    [
        # The holder: everything a holder does, in the statuses that allow it.
        (HOLDER, "assigned", HOLDER_OPEN),
        (HOLDER, "accepted", {"ask", "decline", "note", "resolve"}),
        (HOLDER, "waiting_for_resident", {"note", "resolve"}),
        (HOLDER, "resolved", {"note"}),
        (HOLDER, "closed", set()),
        # Another member of the unit: nothing.
        (OTHER_MEMBER, "assigned", set()),
        (OTHER_MEMBER, "accepted", set()),
        # Leaders of the case's unit and above: notes, resolve, reassign, escalate, take over.
        (GROUP_LEADER, "assigned", LEADER_ASSIGNED),
        (HAMLET_LEADER, "assigned", LEADER_ASSIGNED | {"reject"}),
        (WARD_LEADER, "accepted", LEADER_ASSIGNED | {"reject"}),
        (WARD_LEADER, "waiting_for_resident", LEADER_ASSIGNED | {"reject"}),
        (HAMLET_LEADER, "unassigned", {"note", "reassign", "escalate", "take-over", "reject"}),
        (HAMLET_LEADER, "reopened", {"note", "reassign", "escalate", "take-over", "reject"}),
        (WARD_LEADER, "resolved", {"note"}),
        (WARD_LEADER, "rejected", set()),
        (WARD_LEADER, "withdrawn", set()),
        # A leader of another ward: nothing.
        (ELSEWHERE, "assigned", set()),
        # Administrators: everything a leader does but take over (they hold no rung).
        (ADMIN, "assigned", {"note", "resolve", "reassign", "escalate", "reject"}),
        (ADMIN, "closed", set()),
    ],
)
def test_what_each_person_may_do_in_each_status(
    staff: Staff, status: str, expected: set[str]
) -> None:
    assert permissions(staff, case(status)) == expected


def test_a_leader_holding_the_case_acts_as_its_holder_and_does_not_take_it_over() -> None:
    held = case("accepted", holder="bithu")
    assert permissions(HAMLET_LEADER, held) == {
        "ask",
        "decline",
        "note",
        "resolve",
        "reassign",
        "escalate",
        "reject",
    }


def test_unheld_cases_have_no_holder_actions() -> None:
    assert permissions(HOLDER, case("unassigned", holder=None)) == set()
    assert permissions(ADMIN, case("assigned", holder=None)) == {
        "note",
        "resolve",
        "reassign",
        "escalate",
        "reject",
    }


@pytest.mark.parametrize("status", ["assigned", "accepted", "waiting_for_resident", "resolved"])
def test_what_is_allowed_is_what_the_role_and_the_state_both_allow(status: str) -> None:
    for staff in (HOLDER, OTHER_MEMBER, GROUP_LEADER, HAMLET_LEADER, WARD_LEADER, ADMIN):
        assert permissions(staff, case(status)) <= by_role(staff, case(status))


def test_who_sees_a_case() -> None:
    assigned = case("assigned")
    assert may_see(HOLDER, assigned, past_holders=())
    assert may_see(GROUP_LEADER, assigned, past_holders=())
    assert may_see(ADMIN, assigned, past_holders=())
    assert not may_see(OTHER_MEMBER, assigned, past_holders=())
    assert may_see(OTHER_MEMBER, assigned, past_holders={"binh"})
    assert not may_see(ELSEWHERE, assigned, past_holders={"binh"})
    # A finished case stays visible to the people who had a part in it.
    assert may_see(WARD_LEADER, case("closed"), past_holders=())


def test_every_action_says_who_may_do_it_in_both_languages() -> None:
    assert set(WHO_MAY) == set(ACTIONS)
    for vi, en in WHO_MAY.values():
        assert vi.startswith("Chỉ ")
        assert en.startswith("Only ")


@pytest.mark.parametrize(
    ("staff", "member_id", "expected"),
    [
        (HOLDER, "lan", True),
        (HOLDER, "binh", False),
        (GROUP_LEADER, "binh", True),
        (WARD_LEADER, "binh", True),
        (ELSEWHERE, "binh", False),
        (ADMIN, "binh", True),
    ],
)
def test_who_may_mark_a_member_away(staff: Staff, member_id: str, expected: bool) -> None:
    assert may_mark_away(staff, member_id, UNITS) is expected


@pytest.mark.parametrize(
    ("staff", "expected"),
    [
        (HOLDER, False),
        (GROUP_LEADER, True),
        (WARD_LEADER, True),
        (ADMIN, True),
        (Staff(username="lonely", member_id="lonely", role="leader", unit_id=None), False),
    ],
)
def test_who_lists_a_units_cases(staff: Staff, expected: bool) -> None:
    assert may_list_unit(staff) is expected
