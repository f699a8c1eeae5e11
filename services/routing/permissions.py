"""Who may do what on a case: the one rule the staff API and the workspace pages both ask.

- The member holding the case accepts it, asks the resident, declines it with a reason.
- The holder and the leaders of the case's unit or a unit above it (administrators too) add
  notes and resolve it.
- Those leaders (and administrators) reassign it and escalate it; a leader who does not hold it
  may take it over.
- Leadership above the case's own unit (the ward and up; administrators) rejects it.
- Each of these only in a status where the case's state machine allows it.

Who sees a case at all is `shared.scope`, the one rule every service answers with: the holder,
those who held it before, the leaders of its unit or a unit above it, administrators. Someone
who may do nothing to a case and never held it does not see it at all.
A plain function of the person and the case: no database, no HTTP.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from services.routing.lifecycle import allowed
from shared import scope
from shared.auth import Staff

Action = Literal[
    "accept", "resolve", "ask", "decline", "note", "reassign", "escalate", "take-over", "reject"
]
ACTIONS: tuple[Action, ...] = get_args(Action)


@dataclass(frozen=True)
class CaseFacts:
    """What the rule needs to know about a case."""

    status: str
    holder_member_id: str | None
    # The case's unit and the units above it, nearest first.
    units: Sequence[str]


def holds(staff: Staff, case: CaseFacts) -> bool:
    return staff.member_id is not None and case.holder_member_id == staff.member_id


def leads(staff: Staff, case: CaseFacts) -> bool:
    """A leader of the case's unit or of a unit above it; an administrator."""
    return scope.leads(staff, case.units)


def leadership(staff: Staff, case: CaseFacts) -> bool:
    """An administrator, or a leader of a unit above the case's own (the ward and up)."""
    if staff.is_admin:
        return True
    return staff.role == "leader" and staff.unit_id is not None and staff.unit_id in case.units[1:]


def by_role(staff: Staff, case: CaseFacts) -> frozenset[Action]:
    """What the person's place towards the case lets them do, whatever its status."""
    holder, leader = holds(staff, case), leads(staff, case)
    out: set[Action] = set()
    if holder:
        out |= {"accept", "ask", "decline"}
    if holder or leader:
        out |= {"note", "resolve"}
    if leader:
        out |= {"reassign", "escalate"}
        if staff.role == "leader" and not holder:
            out.add("take-over")
    if leadership(staff, case):
        out.add("reject")
    return frozenset(out)


def by_status(status: str) -> frozenset[Action]:
    """What the case's status lets anyone do; resolving a case not yet accepted accepts it
    first, so "resolve" is open from "assigned" too."""
    same: tuple[Literal["accept", "ask", "decline", "note", "reject"], ...] = (
        "accept",
        "ask",
        "decline",
        "note",
        "reject",
    )
    out: set[Action] = {action for action in same if allowed(status, action)}
    if allowed(status, "resolve") or (status == "assigned" and allowed(status, "accept")):
        out.add("resolve")
    if allowed(status, "assign"):
        out |= {"reassign", "escalate", "take-over"}
    return frozenset(out)


def permissions(staff: Staff, case: CaseFacts) -> frozenset[Action]:
    """THE answer to "what may this person do to this case now"."""
    return by_role(staff, case) & by_status(case.status)


def may_see(staff: Staff, case: CaseFacts, past_holders: Collection[str]) -> bool:
    """Whoever may act on the case by their place (its holder, the leaders of its unit or a
    unit above it, administrators), and everyone who held it before: `shared.scope.may_see`,
    which every service asks."""
    holders = {*past_holders, *([case.holder_member_id] if case.holder_member_id else [])}
    return scope.may_see(staff, scope.Reach(units=case.units, holders=holders))


def may_list_unit(staff: Staff) -> bool:
    """Administrators, and leaders of a unit, list the cases of that unit and the units below
    it; everyone else lists the cases they hold."""
    return staff.is_admin or (staff.role == "leader" and staff.unit_id is not None)


# Who may do each action, said when someone else asks (Vietnamese, English).
WHO_MAY: dict[Action, tuple[str, str]] = {
    "accept": (
        "Chỉ người đang giữ hồ sơ mới nhận được.",
        "Only the member holding the case may accept it.",
    ),
    "ask": (
        "Chỉ người đang giữ hồ sơ mới hỏi người dân được.",
        "Only the member holding the case may ask the resident.",
    ),
    "decline": (
        "Chỉ người đang giữ hồ sơ mới trả lại được.",
        "Only the member holding the case may decline it.",
    ),
    "note": (
        "Chỉ người đang giữ hồ sơ hoặc lãnh đạo đơn vị được làm việc này.",
        "Only the member holding the case or a unit leader may do this.",
    ),
    "resolve": (
        "Chỉ người đang giữ hồ sơ hoặc lãnh đạo đơn vị được làm việc này.",
        "Only the member holding the case or a unit leader may do this.",
    ),
    "reassign": (
        "Chỉ lãnh đạo đơn vị được làm việc này.",
        "Only a leader of the unit may do this.",
    ),
    "escalate": (
        "Chỉ lãnh đạo đơn vị được làm việc này.",
        "Only a leader of the unit may do this.",
    ),
    "take-over": (
        "Chỉ lãnh đạo đơn vị chưa giữ hồ sơ được tiếp nhận hồ sơ.",
        "Only a unit leader who does not already hold the case may take it over.",
    ),
    "reject": (
        "Chỉ lãnh đạo cấp trên (phường, xã) được từ chối xử lý.",
        "Only ward or commune leadership may reject a case.",
    ),
}


def may_mark_away(staff: Staff, member_id: str, member_units: Sequence[str]) -> bool:
    """Members mark themselves away; leaders of the member's unit or a unit above it, and
    administrators, mark anyone (`member_units`: the member's unit and those above it)."""
    if staff.is_admin or staff.member_id == member_id:
        return True
    return staff.role == "leader" and staff.unit_id is not None and staff.unit_id in member_units
