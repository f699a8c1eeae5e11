"""The one scope rule as plain functions: routing asks it with a case's whole unit chain,
notify with the petition's own unit alone and the leader's reach from the token; on the demo
organisation both give the same answer for every person and every unit."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from services.routing.assignment import chain
from services.routing.org import DEMO_ORG_FILE
from services.routing.signin import visible_units
from shared.auth import Staff
from shared.scope import Reach, may_see, may_see_member, may_see_unit


def demo() -> tuple[dict[str, str | None], list[dict[str, Any]]]:
    data = yaml.safe_load(DEMO_ORG_FILE.read_text(encoding="utf-8"))
    return {u["id"]: u.get("parent") for u in data["units"]}, data["members"]


def signed_in(member: dict[str, Any], parents: dict[str, str | None]) -> Staff:
    """The Staff routing's sign-in puts in the token."""
    return Staff(
        username=member["username"],
        member_id=member["username"],
        role=member["role"],
        unit_id=member["unit"],
        units=visible_units(parents, member["role"], member["unit"]),
    )


def test_routing_and_notify_reaches_give_the_same_answer_for_everyone() -> None:
    parents, members = demo()
    for member in members:
        staff = signed_in(member, parents)
        for unit in parents:
            whole_chain = may_see(staff, Reach(units=chain(unit, parents), holders=()))
            own_unit = may_see(staff, Reach(units=(unit,), holders=()))
            assert whole_chain == own_unit, (member["username"], unit)
            expected = member["role"] == "admin" or (
                member["role"] == "leader" and member["unit"] in chain(unit, parents)
            )
            assert whole_chain == expected, (member["username"], unit)


KHOM, TO2, WARD = "my-thoi-thoi-an-a", "my-thoi-thoi-an-a-to-2", "my-thoi"


@pytest.mark.parametrize(
    ("username", "units", "holders", "seen"),
    [
        ("dangthutai", (KHOM,), (), False),  # a unit-mate's case
        ("dangthutai", (TO2,), (), False),  # a sub-unit's, even escalated to his leader
        ("dangthutai", (TO2,), ("dangthutai",), True),  # one he held
        ("bithu.thoiana", (TO2,), (), True),  # the khóm leader, a tổ's case
        ("bithu.thoiana", (WARD,), (), False),  # not the ward's own
        ("danguy.mythoi", (TO2,), (), True),
        ("danguy.myhoahung", (KHOM,), (), False),  # the other commune
        ("admin", ("anywhere",), (), True),
    ],
)
def test_who_sees_a_petition(
    username: str, units: tuple[str, ...], holders: tuple[str, ...], seen: bool
) -> None:
    parents, members = demo()
    staff = signed_in(next(m for m in members if m["username"] == username), parents)
    assert may_see(staff, Reach(units=units, holders=holders)) is seen


def test_unit_and_member_figures_are_for_those_who_see_every_petition_they_count() -> None:
    parents, members = demo()
    by_name = {m["username"]: signed_in(m, parents) for m in members}
    assert may_see_unit(by_name["bithu.thoiana"], TO2)
    assert not may_see_unit(by_name["bithu.thoiana"], WARD)
    assert not may_see_unit(by_name["dangthutai"], KHOM)  # a member: not even their own unit
    assert may_see_unit(by_name["admin"], WARD)
    assert may_see_member(by_name["dangthutai"], "dangthutai", KHOM)
    assert not may_see_member(by_name["dangthutai"], "lyhoangtrang", KHOM)
    assert may_see_member(by_name["bithu.thoiana"], "lehuuhai", TO2)
    assert not may_see_member(by_name["danguy.myhoahung"], "lehuuhai", TO2)
